// Focus where a keyboard or screen-reader user needs it when a page loads: the first
// refusal or error on the page, else a field the page asks for (autofocus), else the
// main heading. No inline script anywhere: the CSP allows only files from /console/static.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var target = document.querySelector("[data-focus], [aria-invalid='true']");
  if (!target && !document.querySelector("[autofocus]")) {
    target = document.querySelector("main h1");
  }
  if (target) {
    target.focus();
  }
});
// A button with data-confirm asks before its form is sent (release, deactivate, dispose).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
