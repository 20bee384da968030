// Passkey buttons: a progressive enhancement. Every passkey form is `hidden` in the
// page and shown here only when the browser can do WebAuthn; without this script
// (or WebAuthn) the pages work as before with the other methods.
//
// Forms (data-passkey):
//   "sign-in"  the code page (second factor) and the sign-in page (no password):
//              options from the API, the browser's answer posted with the form, so
//              the sign-in goes on as after a code.
//   "register" My Profile and the set-up pages: name (and password) to the API,
//              the browser creates the key, the API stores it.
// Messages come from the form's data-msg-* attributes (the page's language).
"use strict";

(function () {
  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  function b64urlToBytes(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bytesToB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // WebAuthn Level 3 has these; older browsers get the same by hand.
  function creationOptions(pk) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(pk);
    }
    var o = Object.assign({}, pk);
    o.challenge = b64urlToBytes(pk.challenge);
    o.user = Object.assign({}, pk.user, { id: b64urlToBytes(pk.user.id) });
    o.excludeCredentials = (pk.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBytes(c.id) });
    });
    return o;
  }

  function requestOptions(pk) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(pk);
    }
    var o = Object.assign({}, pk);
    o.challenge = b64urlToBytes(pk.challenge);
    o.allowCredentials = (pk.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBytes(c.id) });
    });
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try {
        return cred.toJSON();
      } catch (e) {
        // fall through to the manual shape
      }
    }
    var r = cred.response;
    var response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bytesToB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = bytesToB64url(r.authenticatorData);
      response.signature = bytesToB64url(r.signature);
      if (r.userHandle) response.userHandle = bytesToB64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: bytesToB64url(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) {
          var e = new Error(j && j.error ? j.error : "http_" + r.status);
          e.code = j && j.error;
          throw e;
        }
        return j;
      });
    });
  }

  function message(form, name) {
    return form.getAttribute("data-msg-" + name) || form.getAttribute("data-msg-other") || "";
  }

  function showError(form, text) {
    var box = form.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }

  // What a refused ceremony means for people.
  function errorName(e) {
    if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) return "cancelled";
    if (e && e.name === "InvalidStateError") return "registered";
    var code = e && e.code;
    if (code === "invalid_password" || code === "too_many_attempts") return "password";
    if (code === "invalid_name") return "name";
    if (code === "passkey_already_registered") return "registered";
    if (code === "passkey_unavailable") return "unavailable";
    if (code === "passkey_expired") return "expired";
    if (code === "passkey_unknown") return "unknown";
    return "other";
  }

  // The autofill request of the sign-in page, if any: { controller, done }.
  var conditional = null;
  var buttonUsed = false;

  // One request at a time: the button's waits until the autofill's has ended, so
  // its answer comes from the prompt the person asked for. The form's
  // data-passkey-request names the request the browser is waiting on.
  function signIn(form, mediation) {
    var opts = { mediation: mediation };
    var before = Promise.resolve();
    if (mediation === "conditional") {
      conditional = { controller: new AbortController(), done: null };
      opts.signal = conditional.controller.signal;
    } else {
      buttonUsed = true;
      if (conditional) {
        conditional.controller.abort();
        before = conditional.done.catch(function () {});
        conditional = null;
      }
    }
    var run = before
      .then(function () {
        return postJSON("/api/v1/login/passkey/options", {});
      })
      .then(function (j) {
        opts.publicKey = requestOptions(j.options.publicKey);
        form.setAttribute("data-passkey-request", mediation);
        return navigator.credentials.get(opts);
      })
      .then(
        function (cred) {
          if (!cred) throw Object.assign(new Error("none"), { name: "NotAllowedError" });
          form.querySelector("input[name=credential]").value = JSON.stringify(credentialJSON(cred));
          form.submit();
        },
        function (e) {
          if (form.getAttribute("data-passkey-request") === mediation) {
            form.removeAttribute("data-passkey-request");
          }
          throw e;
        }
      );
    if (mediation === "conditional") conditional.done = run;
    return run;
  }

  function setUpSignIn(form) {
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      if (form.querySelector("input[name=credential]").value) return; // the real post
      ev.preventDefault();
      signIn(form, "optional").catch(function (e) {
        showError(form, message(form, errorName(e)));
      });
    });
    // The sign-in page: the browser's autofill offers passkeys in the e-mail field.
    if (form.hasAttribute("data-passkey-autofill") && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok && !buttonUsed) {
          signIn(form, "conditional").catch(function () {
            // Aborted for the button, or declined: the page stays as it is.
          });
        }
      });
    }
  }

  function setUpRegister(form) {
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      var body = { name: form.elements.name.value };
      if (form.elements.password) body.password = form.elements.password.value;
      // A security key (touch only) instead of a passkey; the API's default is a passkey.
      var kind = form.querySelector("input[name=kind]:checked");
      if (kind && kind.value !== "passkey") body.kind = kind.value;
      var id;
      postJSON("/api/v1/me/factors/passkey", body)
        .then(function (j) {
          id = j.id;
          return navigator.credentials.create({ publicKey: creationOptions(j.options.publicKey) });
        })
        .then(function (cred) {
          return postJSON("/api/v1/me/factors/passkey/" + encodeURIComponent(id) + "/confirm", {
            credential: credentialJSON(cred),
          });
        })
        .then(function (j) {
          var done = form.getAttribute("data-done") || "/account?done=passkey";
          var codes = document.getElementById("passkey-codes");
          if (j.recovery_codes && codes) {
            var list = codes.querySelector("ol");
            j.recovery_codes.forEach(function (c) {
              var li = document.createElement("li");
              li.textContent = c;
              list.appendChild(li);
            });
            codes.querySelector("a").setAttribute("href", done);
            form.hidden = true;
            codes.hidden = false;
            codes.querySelector("h2").focus();
          } else {
            window.location.assign(done);
          }
        })
        .catch(function (e) {
          button.disabled = false;
          showError(form, message(form, errorName(e)));
        });
    });
  }

  document.querySelectorAll("[data-passkey-choice]").forEach(function (e) {
    e.hidden = false;
  });
  document.querySelectorAll("[data-passkey-nojs]").forEach(function (e) {
    e.hidden = true;
  });
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    if (form.getAttribute("data-passkey") === "register") setUpRegister(form);
    else setUpSignIn(form);
  });
})();
