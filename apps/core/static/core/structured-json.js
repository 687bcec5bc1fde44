// Structured JSON editors (apps/core/jsonform.py): the "Raw JSON" fold-out shows the form's
// current value when opened, and typing there ticks "save the raw JSON" so that text is saved.
(function () {
  "use strict";
  function wire(box) {
    var raw = box.querySelector(".structured-json-raw textarea");
    var use = box.querySelector(".structured-json-use input");
    var details = box.querySelector("details.structured-json-raw");
    var data = box.querySelector("textarea[data-django-jsonform]");
    if (!raw || !use || !details || !data) return;
    details.addEventListener("toggle", function () {
      if (!details.open || use.checked) return;
      try {
        raw.value = JSON.stringify(JSON.parse(data.value || "null"), null, 2);
      } catch (e) {
        raw.value = data.value;
      }
    });
    raw.addEventListener("input", function () { use.checked = true; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".structured-json").forEach(wire);
  });
})();
