// Text that does not parse yet is never saved or run as something else: Save and
// Run refuse with the reason, and take the person to the field.

import { $, toast } from "./dom.js";
import { reveal } from "./editor.js";
import { setView } from "./jsonview.js";
import { draftList, store } from "./state.js";

export function refuse(action) {
  const list = draftList();
  if (!list.length) return false;
  const [first] = list;
  const more = list.length > 1 ? ` (and ${list.length - 1} more field${list.length > 2 ? "s" : ""})` : "";
  toast(`${action}: ${first.label} is not valid yet. ${first.error}${more}`, "error");
  if (first.path === "") {
    if (store.get().ui.view === "form") setView("json");
    $("#json-text").focus();
  } else {
    if (store.get().ui.view === "json") setView("split");
    reveal(first.path);
  }
  return true;
}
