// The key prompt: asked once per browser tab, again after a 401, and after signing out.

import { ApiError, authEnabled, forgetKey, request, storedKey, storeKey } from "./api.js";

let required = true;
let pending = null;

const $ = (id) => document.getElementById(id);

function showSignedIn() {
  const signedIn = required && Boolean(storedKey());
  $("sign-out").hidden = !signedIn;
  $("auth-state").textContent = required ? (signedIn ? "Signed in" : "") : "Authentication is off";
}

async function checkKey(key) {
  try {
    await request("/v1/jobs?limit=1", { key });
    return null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return "That key was refused: check it and try again.";
    return `The service did not answer as expected: ${error.message}`;
  }
}

/** Show the prompt (with a reason, if any) and resolve once a working key is stored. */
export function promptForKey(reason = "") {
  if (pending) return pending;
  const dialog = $("key-dialog"), form = $("key-form"), input = $("key-input"), error = $("key-error");
  error.hidden = !reason;
  error.textContent = reason;
  input.value = "";
  pending = new Promise((resolve) => {
    async function submitted(event) {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      $("key-submit").disabled = true;
      const problem = await checkKey(key);
      $("key-submit").disabled = false;
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        input.select();
        return;
      }
      storeKey(key);
      form.removeEventListener("submit", submitted);
      dialog.close();
      pending = null;
      showSignedIn();
      resolve(key);
    }
    form.addEventListener("submit", submitted);
  });
  showSignedIn();
  if (!dialog.open) dialog.showModal();
  input.focus();
  return pending;
}

/** Resolve when the page may call the API: at once without auth or with a stored key. */
export async function ensureSignedIn() {
  required = await authEnabled();
  showSignedIn();
  if (!required || storedKey()) return;
  await promptForKey();
}

export function installSignOut(onSignedOut, onSignedIn) {
  // Escape would close the prompt with no key, leaving a page that can do nothing.
  $("key-dialog").addEventListener("cancel", (event) => event.preventDefault());
  $("sign-out").addEventListener("click", async () => {
    forgetKey();
    showSignedIn();
    onSignedOut();
    await promptForKey();
    onSignedIn();
  });
}
