/* The TV app: plain JavaScript, no build step. It talks only to the JSON API.
 *
 * Screens: start -> code (Amazon's or ours) -> [handoff] -> welcome, with problem and
 * fresh-code paths. Every poll waits the interval the server asked for; a journey that is
 * cancelled (or replaced) stops polling because its generation number is stale.
 */
"use strict";

(() => {
  const body = document.body;
  const API = body.dataset.api || "/api/v1";
  const DEVICE_NAME = body.dataset.deviceName || "TV";
  const RECHECK_MS = Math.max(1, Number(body.dataset.recheckSeconds || 30)) * 1000;
  const TOKEN_KEY = "lwa_accounts_tv_token";

  let generation = 0; // bumped whenever a journey starts or ends
  let lastAction = null; // what "Try again" repeats
  let recheckTimer = null;
  let countdownTimer = null;

  // ---- small helpers ----------------------------------------------------------------

  const $ = (sel, root = document) => root.querySelector(sel);
  const field = (name) => $(`[data-field="${name}"]`);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function setText(name, text) {
    field(name).textContent = text;
  }

  function setQr(name, svgText) {
    const holder = field(name);
    holder.replaceChildren();
    if (!svgText) return;
    // Parse as SVG (never as HTML) and import only the <svg> element.
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg && svg.nodeName.toLowerCase() === "svg") {
      holder.appendChild(document.importNode(svg, true));
    }
  }

  function show(screen) {
    for (const section of document.querySelectorAll("[data-screen]")) {
      section.hidden = section.dataset.screen !== screen;
    }
    body.dataset.current = screen;
    const first = $(`[data-screen="${screen}"] button`);
    if (first) first.focus();
  }

  function focusables() {
    return [...document.querySelectorAll(`[data-screen="${body.dataset.current}"] button`)];
  }

  function moveFocus(step) {
    const items = focusables();
    if (items.length === 0) return;
    const index = items.indexOf(document.activeElement);
    const next = index < 0 ? 0 : (index + step + items.length) % items.length;
    items[next].focus();
  }

  function startCountdown(name, expiresAt) {
    clearInterval(countdownTimer);
    const tick = () => {
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      const m = Math.floor(left / 60);
      const s = String(left % 60).padStart(2, "0");
      setText(name, `(code valid for ${m}:${s})`);
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function token() {
    return localStorage.getItem(TOKEN_KEY);
  }

  async function api(method, path, data, bearer) {
    const headers = { Accept: "application/json" };
    if (data !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: data === undefined ? undefined : JSON.stringify(data),
        cache: "no-store",
      });
    } catch (err) {
      return { status: 0, body: {} };
    }
    let json = {};
    try {
      json = await response.json();
    } catch (err) {
      json = {};
    }
    return { status: response.status, body: json };
  }

  // ---- outcomes ---------------------------------------------------------------------

  function signedIn(result) {
    localStorage.setItem(TOKEN_KEY, result.session.token);
    welcome(result.account, result.created);
  }

  function welcome(account, created) {
    generation += 1;
    clearInterval(countdownTimer);
    setText("welcome-name", account.name || account.username);
    setText(
      "welcome-detail",
      created ? "Your new account is ready. You are signed in on this TV."
              : "You are signed in on this TV.",
    );
    show("welcome");
    scheduleRecheck();
  }

  function problem(title, detail) {
    generation += 1;
    clearInterval(countdownTimer);
    setText("problem-title", title);
    setText("problem-detail", detail);
    show("problem");
  }

  function problemFrom(response) {
    if (response.status === 0) {
      problem("No connection", "The TV could not reach the server. Check the network and try again.");
    } else if (response.status === 503) {
      problem("Amazon is not answering", response.body.detail || "Please try again in a moment.");
    } else if (response.status === 429) {
      problem("Too many attempts", response.body.detail || "Wait a little and try again.");
    } else {
      problem("Sign-in failed", response.body.detail || response.body.error_description ||
        "Something went wrong. Please try again.");
    }
  }

  function backToStart() {
    generation += 1;
    clearInterval(countdownTimer);
    clearTimeout(recheckTimer);
    show("start");
  }

  // ---- the journeys -----------------------------------------------------------------

  function showCode(kind, data, notice) {
    setText("code-title", kind === "amazon" ? "Sign in with Amazon" : "Sign in with your phone");
    setText("code-url", data.verification_uri);
    setText("user-code", data.user_code);
    setText(
      "code-signin-step",
      kind === "amazon" ? "Sign in to Amazon if asked." : "Sign in there, then confirm this TV.",
    );
    const noticeEl = field("code-notice");
    noticeEl.hidden = !notice;
    noticeEl.textContent = notice || "";
    setQr("code-qr", data.qr_svg);
    startCountdown("code-expires", Date.now() + data.expires_in * 1000);
    show("code");
  }

  function showHandoff(result) {
    const handoff = result.handoff;
    setText(
      "handoff-why",
      result.result === "link_required"
        ? "This email already has an account here. To link it, sign in with Amazon on your phone, then confirm that account's password."
        : "A few more details are needed to create your account. Fill them in on your phone.",
    );
    // Show the short address (the code is shown on its own); the QR code has both.
    const shown = new URL(handoff.url);
    setText("handoff-url", shown.origin + shown.pathname);
    setText("handoff-code", handoff.code);
    setQr("handoff-qr", handoff.qr_svg);
    startCountdown("handoff-expires", Date.parse(handoff.expires_at));
    show("handoff");
  }

  async function start(kind, notice) {
    lastAction = kind;
    const mine = ++generation;
    show("loading");
    const path = kind === "amazon" ? "/amazon/device-authorizations" : "/device/authorize";
    const response = await api("POST", path, { device_name: DEVICE_NAME });
    if (mine !== generation) return;
    if (response.status !== 200 && response.status !== 201) {
      problemFrom(response);
      return;
    }
    const data = response.body;
    showCode(kind, data, notice);
    await pollLoop(mine, kind, data);
  }

  async function pollLoop(mine, kind, data) {
    let interval = data.interval;
    let flowId = null; // set once the server hands off to the phone
    for (;;) {
      await sleep(interval * 1000);
      if (mine !== generation) return;
      let response;
      if (flowId) {
        // Secret handles travel in the body, never in the URL (URLs end up in logs).
        response = await api("POST", "/flows/poll", { flow_id: flowId });
      } else if (kind === "amazon") {
        response = await api("POST", "/amazon/device-authorizations/poll", { authorization_id: data.id });
      } else {
        response = await api("POST", "/device/token", { device_code: data.device_code });
      }
      if (mine !== generation) return;
      const outcome = classify(response);
      switch (outcome.kind) {
        case "wait":
          interval = outcome.interval || interval;
          break;
        case "signed_in":
          signedIn(response.body);
          return;
        case "handoff":
          flowId = response.body.flow.id;
          showHandoff(response.body);
          break;
        case "expired":
          start(kind, "The code expired. Here is a new one.");
          return;
        case "denied":
          problem("Sign-in declined", "The sign-in was declined on the other device.");
          return;
        default:
          problemFrom(response);
          return;
      }
    }
  }

  function classify(response) {
    const { status, body: data } = response;
    if (status === 200 || status === 201) {
      if (data.result === "pending") return { kind: "wait" };
      if (data.session && data.account) return { kind: "signed_in" };
      if ((data.result === "link_required" || data.result === "registration_required") && data.handoff) {
        return { kind: "handoff" };
      }
      return { kind: "error" };
    }
    const code = data.error || data.code;
    if (code === "authorization_pending") return { kind: "wait" };
    if (code === "slow_down") return { kind: "wait", interval: Number(data.interval) || 0 };
    if (code === "expired_token" || code === "expired" || code === "flow_expired" ||
        code === "flow_not_found" || status === 410) {
      return { kind: "expired" };
    }
    if (code === "access_denied") return { kind: "denied" };
    return { kind: "error" };
  }

  // ---- signed in ----------------------------------------------------------------------

  function scheduleRecheck() {
    clearTimeout(recheckTimer);
    recheckTimer = setTimeout(recheck, RECHECK_MS);
  }

  // A revoked TV finds out at its next call and goes back to the start screen.
  async function recheck() {
    const current = token();
    if (!current || body.dataset.current !== "welcome") return;
    const response = await api("GET", "/me", undefined, current);
    if (response.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      backToStart();
      return;
    }
    scheduleRecheck();
  }

  async function signOut() {
    const current = token();
    localStorage.removeItem(TOKEN_KEY);
    if (current) await api("DELETE", "/sessions/current", undefined, current);
    backToStart();
  }

  async function boot() {
    const current = token();
    if (!current) {
      show("start");
      return;
    }
    show("loading");
    const response = await api("GET", "/me", undefined, current);
    if (response.status === 200 && response.body.account) {
      welcome(response.body.account, false);
    } else {
      if (response.status === 401) localStorage.removeItem(TOKEN_KEY);
      show("start");
    }
  }

  // ---- input: remote control keys and clicks ---------------------------------------------

  function act(action) {
    if (action === "amazon" || action === "phone") start(action);
    else if (action === "cancel") backToStart();
    else if (action === "retry") start(lastAction || "amazon");
    else if (action === "signout") signOut();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.dataset.action);
  });

  document.addEventListener("keydown", (event) => {
    switch (event.key) {
      case "ArrowDown":
      case "ArrowRight":
        moveFocus(1);
        event.preventDefault();
        break;
      case "ArrowUp":
      case "ArrowLeft":
        moveFocus(-1);
        event.preventDefault();
        break;
      case "Escape":
      case "Backspace":
      case "BrowserBack":
        if (body.dataset.current !== "start" && body.dataset.current !== "welcome") {
          backToStart();
          event.preventDefault();
        }
        break;
      default:
        break;
    }
  });

  boot();
})();
