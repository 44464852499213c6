// Preloaded (`node --require`) into FlowSphere's studio server by bench/vs_flowsphere.py.
// It changes how the server is started, not what it does per request:
//   - it listens on 127.0.0.1 only: the studio calls app.listen(port), which binds every
//     interface; the benchmarks talk to loopback only;
//   - it opens no browser: the listen callback spawns xdg-open (open, cmd elsewhere);
//     that one spawn returns a stand-in that does nothing.
// Nothing else of FlowSphere is touched; its code stays outside this repository.
'use strict';

const net = require('net');
const childProcess = require('child_process');
const { EventEmitter } = require('events');

const HOST = process.env.FLOWSPHERE_BENCH_HOST || '127.0.0.1';
const BROWSER_OPENERS = new Set(['xdg-open', 'open', 'cmd']);

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function benchListen(...args) {
  // listen(port[, host][, backlog][, callback]): add the host when it is missing
  const port = args[0];
  const isPort = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (isPort && typeof args[1] !== 'string') {
    args.splice(1, 0, HOST);
  }
  return listen.apply(this, args);
};

const spawn = childProcess.spawn;
childProcess.spawn = function benchSpawn(command, ...rest) {
  if (BROWSER_OPENERS.has(command)) {
    const standIn = new EventEmitter();
    standIn.unref = () => {};
    return standIn;
  }
  return spawn.call(this, command, ...rest);
};
