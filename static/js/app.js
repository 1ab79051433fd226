// Admin portal: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }
  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });
  // Let htmx swap error fragments (422 form errors, 403 and 5xx messages) into the page
  // instead of silently dropping them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 422 || status === 403 || status === 404 || status >= 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Flash messages can be dismissed.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) {
      var box = button.closest(".flash");
      if (box) { box.remove(); }
    }
  });
})();
