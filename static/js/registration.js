// The registration edge's only script: it solves the form's proof-of-work challenge
// (ALTCHA-compatible: SHA-256 of salt + number) and puts the payload in the hidden
// `altcha` field. Without it the forms still work, under a tighter per-address limit.
(function () {
  "use strict";

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer))
      .map(function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
  }

  async function solve(challenge) {
    var encoder = new TextEncoder();
    for (var n = 0; n <= challenge.maxnumber; n++) {
      var digest = await crypto.subtle.digest("SHA-256", encoder.encode(challenge.salt + n));
      if (hex(digest) === challenge.challenge) {
        return n;
      }
    }
    throw new Error("challenge not solvable");
  }

  async function prepare(form) {
    var field = form.querySelector("[data-pow-field]");
    var response = await fetch(form.getAttribute("data-pow"), { credentials: "same-origin" });
    if (!response.ok) {
      throw new Error("no challenge");
    }
    var challenge = await response.json();
    var number = await solve(challenge);
    field.value = btoa(JSON.stringify({
      algorithm: challenge.algorithm,
      challenge: challenge.challenge,
      number: number,
      salt: challenge.salt,
      signature: challenge.signature
    }));
  }

  function setUp(form) {
    if (!window.crypto || !crypto.subtle) {
      return;
    }
    var ready = prepare(form).catch(function () { /* the no-JavaScript path remains */ });
    var waiting = false;
    form.addEventListener("submit", function (event) {
      var field = form.querySelector("[data-pow-field]");
      if (field.value || waiting) {
        return;
      }
      event.preventDefault();
      waiting = true;
      form.setAttribute("aria-busy", "true");
      ready.then(function () { form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-pow]").forEach(setUp);
  });
})();
