// Ticket desk: choosing a canned response inserts its text (already filled in for this ticket by
// the server, see apps/tickets/canned.py) into the reply box at the cursor. No inline handlers (CSP).
document.addEventListener("DOMContentLoaded", function () {
  var select = document.querySelector("select[data-desk-canned]");
  var reply = document.getElementById("id_reply");
  if (!select || !reply) {
    return;
  }
  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    var text = option ? option.getAttribute("data-text") : null;
    if (!text) {
      return;
    }
    var start = reply.selectionStart || 0;
    var end = reply.selectionEnd || 0;
    var before = reply.value.slice(0, start);
    var after = reply.value.slice(end);
    var glue = before && !before.endsWith("\n") ? "\n" : "";
    reply.value = before + glue + text + after;
    var caret = (before + glue + text).length;
    reply.focus();
    reply.setSelectionRange(caret, caret);
    select.selectedIndex = 0;  // ready to insert another
  });
});
