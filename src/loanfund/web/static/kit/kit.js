// loanfund web kit: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // A form marked data-submit-once sends once: its buttons are disabled after the first submit
  // (the server refuses a duplicate anyway, through the form's idempotency key).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-submit-once")) return;
    if (form.dataset.sent === "1") { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
      b.setAttribute("aria-disabled", "true");
      window.setTimeout(function () { b.disabled = true; }, 0);
    });
  }, true);
  // Focus the error summary of a page that shows one, so that a screen reader announces it.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  });
})();
