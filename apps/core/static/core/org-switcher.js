// Admin header: switching the acting organization submits the form (no inline handler, for the CSP).
document.addEventListener("DOMContentLoaded", function () {
  var select = document.getElementById("org-select");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
});
