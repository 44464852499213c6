// Starting points for "New": empty, simple chain, login chain, user input.
import { DEMO_URL } from "./api.js";

export function template(kind) {
  const defaults = {
    baseUrl: DEMO_URL,
    timeout: 30,
    headers: { "Content-Type": "application/json" },
  };
  switch (kind) {
    case "simple":
      return {
        name: "Simple chain",
        description: "List items, then read the first one.",
        variables: {},
        defaults,
        nodes: [
          {
            id: "list",
            name: "List items",
            method: "GET",
            url: "/items",
            validations: [{ httpStatusCode: 200 }, { jsonpath: ".count", greaterThan: 0 }],
          },
          {
            id: "first",
            name: "First item",
            method: "GET",
            url: "/items/{{ .responses.list.items[0].id }}",
            validations: [{ httpStatusCode: 200 }, { jsonpath: ".name", exists: true }],
          },
        ],
      };
    case "login":
      return {
        name: "Login chain",
        description: "Log in, then use the token.",
        variables: { user: "ada", password: "secret" },
        defaults,
        nodes: [
          {
            id: "login",
            name: "Log in",
            method: "POST",
            url: "/login",
            body: { username: "{{ .vars.user }}", password: "{{ .vars.password }}" },
            validations: [{ httpStatusCode: 200 }, { jsonpath: ".token", exists: true }],
          },
          {
            id: "me",
            name: "Profile",
            method: "GET",
            url: "/me",
            headers: { Authorization: "Bearer {{ .responses.login.token }}" },
            validations: [{ httpStatusCode: 200 }, { jsonpath: ".username", equals: "ada" }],
          },
        ],
      };
    case "input":
      return {
        name: "User input",
        description: "Ask for a password mid-run.",
        variables: { user: "ada" },
        defaults,
        nodes: [
          {
            id: "login",
            name: "Log in",
            method: "POST",
            url: "/login",
            userPrompts: { password: "Password for {{ .vars.user }} (hint: secret)" },
            body: { username: "{{ .vars.user }}", password: "{{ .input.password }}" },
            validations: [{ httpStatusCode: 200 }, { jsonpath: ".token", exists: true }],
          },
          {
            id: "me",
            name: "Profile",
            method: "GET",
            url: "/me",
            headers: { Authorization: "Bearer {{ .responses.login.token }}" },
          },
        ],
      };
    default:
      return {
        name: "New flow",
        variables: {},
        defaults: { baseUrl: DEMO_URL },
        nodes: [{ id: "step1", name: "First step", method: "GET", url: "/items" }],
      };
  }
}
