// Waiting pages (an export being built, a dispatch being planned or sent): without JavaScript the page shows its
// state and an "Actualiser" link; with it, this script asks the page's JSON status every few seconds, writes the
// state into the page's aria-live region and, once the work is done, shows the result link or reloads the page.
// It stops asking, says why and shows the "Actualiser" link again when the status can no longer answer (signed
// out, access removed, the work gone or expired) or after too many failed attempts in a row.
//
// Markup: an element with data-poll="<status URL>" holding [data-status] (the live text), optionally
// [data-result] (hidden until done; its link gets the URL the status gives) and [data-manual] (the no-JS hint
// and the "Actualiser" link).
// The status URL answers {"done": bool, "message": "…", "url": "…" (optional)}.
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  var MAX_FAILURES = 10;
  var FINAL = {
    401: "Votre session a pris fin : cette page ne suit plus l'avancement. Actualisez-la pour vous reconnecter.",
    403: "Vous n'avez plus accès à ce suivi : cette page ne suit plus l'avancement.",
    404: "Ce suivi n'existe plus (il a expiré ou a été supprimé) : cette page ne suit plus l'avancement."
  };
  var UNREACHABLE = "Le serveur ne répond pas : cette page ne suit plus l'avancement. " +
    "Actualisez-la dans quelques instants.";
  var box = document.querySelector("[data-poll]");
  if (!box || !window.fetch) { return; }
  var status = box.querySelector("[data-status]");
  var result = box.querySelector("[data-result]");
  var manual = document.querySelector("[data-manual]");
  var refresh = manual ? manual.querySelector("a") : null;
  var refreshBlock = refresh && refresh.parentNode !== manual ? refresh.parentNode : refresh;
  var failures = 0;

  // The hint below the status: a sentence while the script follows the work, the "Actualiser" link once it stops.
  function hint(text) {
    if (!manual) { return; }
    manual.textContent = "";
    if (text) {
      var line = document.createElement("p");
      line.textContent = text;
      manual.appendChild(line);
    } else if (refreshBlock) {
      manual.appendChild(refreshBlock);
    }
    manual.hidden = false;
  }

  function say(text) {
    if (status && text && status.textContent !== text) { status.textContent = text; }
  }

  function stop(text) {
    say(text);
    hint(null);
  }

  function finish(data) {
    if (result && data.url) {
      var link = result.querySelector("a");
      if (link) { link.href = data.url; }
      result.hidden = false;
      say(data.message);
      if (manual) { manual.hidden = true; }
      return;
    }
    window.location.reload();
  }

  function poll() {
    fetch(box.dataset.poll, {headers: {Accept: "application/json"}, credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (FINAL[response.status]) { return {final: FINAL[response.status]}; }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        data = data || {};
        if (data.final) { stop(data.final); return; }
        failures = 0;
        if (data.done) { finish(data); return; }
        say(data.message);
        window.setTimeout(poll, PERIOD_MS);
      }, function () {
        failures += 1;
        if (failures >= MAX_FAILURES) { stop(UNREACHABLE); return; }
        say("Impossible de vérifier l'avancement pour l'instant : nouvel essai dans quelques secondes.");
        window.setTimeout(poll, PERIOD_MS * 2);
      });
  }

  hint("Cette page suit l'avancement d'elle-même : inutile de la recharger.");
  window.setTimeout(poll, PERIOD_MS);
})();
