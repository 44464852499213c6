// POST + streaming: fetch with a ReadableStream reader and a small SSE parser
// (EventSource cannot POST).

import { API, ApiError, needsToken, send } from "./api.js";

// Parse SSE text incrementally; call onEvent({event, data, id}) per frame.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  feed(chunk) {
    this.buffer += chunk;
    let nl;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      const sepLen = this.buffer.startsWith("\r\n", nl) ? 2 : 1;
      // A lone trailing "\r" may be half of "\r\n": wait for more input.
      if (this.buffer[nl] === "\r" && sepLen === 1 && nl === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(nl + sepLen);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // comment, e.g. ": keep-alive"
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }
}

// Start a streamed execution. Resolves once the response headers arrive with
// {executionId, done}; `done` settles when the stream ends (the server closes it
// after `end`, so a finished run is read to its close, never aborted: an aborted
// response is a failed request in the browser's log). onEvent(name, data).
export async function executeStream(body, onEvent, { signal } = {}) {
  const res = await send(`${API}/execute-stream`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) {
    if (res.status === 401) needsToken();
    let payload = null;
    try {
      payload = await res.json();
    } catch {
      payload = null;
    }
    throw new ApiError(res.status, payload);
  }
  const executionId = res.headers.get("X-Execution-Id");
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SSEParser(({ event, data }) => {
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    onEvent(event, parsed);
  });
  const done = (async () => {
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      parser.feed(decoder.decode());
      parser.feed("\n\n");
    } finally {
      reader.releaseLock?.();
    }
  })();
  return { executionId, done, cancel: () => reader.cancel().catch(() => {}) };
}
