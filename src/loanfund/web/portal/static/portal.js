// The apply form as the applicant types: the credit code's check character, amounts shown in 万元,
// whole numbers, R&D staff within all staff. The server checks the same rules; this only helps sooner.
(function () {
  "use strict";
  var ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"; // GB 32100-2015: no I, O, S, V, Z
  var FORMAT = /^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

  function checkCharacter(code17) {
    var total = 0;
    for (var i = 0; i < 17; i++) {
      var w = 1;
      for (var k = 0; k < i; k++) w = (w * 3) % 31;
      total += ALPHABET.indexOf(code17.charAt(i)) * w;
    }
    var value = 31 - (total % 31);
    return ALPHABET.charAt(value === 31 ? 0 : value);
  }

  function show(form, input, message) {
    var out = form.querySelector('[data-error-for="' + input.name + '"]');
    var field = input.closest(".field");
    if (out) out.textContent = message || "";
    if (field) field.classList.toggle("has-error", !!message);
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }

  function amountValue(text) { return text.replace(/[,\s，]/g, ""); }

  function check(form, input) {
    var d = form.dataset, v = input.value.trim(), kind = input.dataset.check;
    if (!v) { return input.required ? d.msgRequired : ""; }
    if (kind === "credit-code") {
      v = v.toUpperCase();
      if (v.length < 18) return ""; // still typing
      if (!FORMAT.test(v)) return d.msgCreditFormat;
      if (checkCharacter(v.slice(0, 17)) !== v.charAt(17)) return d.msgCreditCheck;
    } else if (kind === "amount") {
      if (!/^\d+(\.\d{1,2})?$/.test(amountValue(v))) return d.msgAmount;
    } else if (kind === "whole" || kind === "term") {
      if (!/^\d+$/.test(v)) return d.msgWhole;
      if (kind === "term" && (parseInt(v, 10) < 1 || parseInt(v, 10) > parseInt(d.maxTerm, 10))) return d.msgTerm;
      if (input.name === "rd_staff" || input.name === "total_staff") {
        var rd = form.elements.namedItem("rd_staff"), all = form.elements.namedItem("total_staff");
        if (rd.value && all.value && /^\d+$/.test(rd.value) && /^\d+$/.test(all.value) &&
            parseInt(rd.value, 10) > parseInt(all.value, 10)) {
          if (input.name === "rd_staff") return d.msgRdStaff;
        }
      }
    }
    return "";
  }

  function wanHint(form, input) {
    var id = input.id + "-wan", hint = document.getElementById(id);
    if (!hint) {
      hint = document.createElement("p");
      hint.id = id; hint.className = "hint-live"; hint.setAttribute("aria-live", "polite");
      input.closest(".field").appendChild(hint);
    }
    var v = amountValue(input.value.trim());
    if (/^\d+(\.\d{1,2})?$/.test(v) && parseFloat(v) >= 10000) {
      // display only: the form sends the amount as typed
      var wan = (Number(v) / 10000).toLocaleString("zh-CN", { maximumFractionDigits: 2 });
      hint.textContent = form.dataset.msgWan.replace("{wan}", wan);
    } else {
      hint.textContent = "";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-apply-form]");
    if (!form) return;
    form.querySelectorAll("input[data-check]").forEach(function (input) {
      input.addEventListener("blur", function () { show(form, input, check(form, input)); });
      input.addEventListener("input", function () {
        if (input.dataset.check === "credit-code") {
          var up = input.value.toUpperCase();
          if (up !== input.value) input.value = up;
          if (up.length === 18 || input.closest(".has-error")) show(form, input, check(form, input));
        } else if (input.closest(".has-error")) {
          show(form, input, check(form, input));
        }
        if (input.dataset.wan) wanHint(form, input);
      });
      if (input.dataset.wan && input.value) wanHint(form, input);
    });
  });
})();
