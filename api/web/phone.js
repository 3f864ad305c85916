// pbxd's softphone page: an agent signs in, connects this browser (or the
// desk phone) to the box, dials, mutes, leaves and re-enters conferences,
// sends DTMF and changes status. Everything goes through pbxd's API and its
// events WebSocket; media is WebRTC to the box, which anchors every call.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    token: "", userId: "", connection: "disconnected", calls: [], inMute: false,
    inConference: false, events: [], pc: null, remote: null, mic: null, acd: false,
  };
  window.pbxdPhone = state; // read by tests and handy in the console

  function log(text) {
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + "  " + text;
    $("log").prepend(li);
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + state.token } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch("/api/v1" + path, opts);
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const msg = (data && (data.detail || data.title)) || res.statusText;
      log(method + " " + path + ": " + res.status + " " + msg);
      throw new Error(msg);
    }
    return data;
  }

  function render() {
    $("connection").textContent = state.connection;
    const up = state.connection === "connected";
    $("connect").disabled = state.connection !== "disconnected";
    $("disconnect").disabled = state.connection === "disconnected";
    $("dial").disabled = !up;
    const inCall = state.calls.length > 0;
    $("hangup").disabled = !inCall;
    $("mute").disabled = !up;
    $("mute").textContent = state.inMute ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(state.inMute));
    $("conference").disabled = !(state.inConference || state.outOfConference);
    $("conference").textContent = state.outOfConference ? "Re-enter conference" : "Leave conference";
    $("call").textContent = inCall ? state.calls.map((c) => c.to + " (" + c.state + ")").join(", ") : "none";
    $("acd").textContent = state.acd ? "logged in" : "logged out";
  }

  // --- sign in -----------------------------------------------------------

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const res = await fetch("/api/v1/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: $("username").value, password: $("password").value }),
      });
      const data = await res.json();
      if (!res.ok) throw new Error(data.detail || data.title || "sign-in failed");
      state.token = data.token;
      const me = await api("POST", "/sessions", { platform: "web" });
      state.userId = me.userId;
      $("who").textContent = me.username || me.firstName || "";
      state.acd = !!me.acdLoginAt;
      $("login-panel").hidden = true;
      $("phone-panel").hidden = false;
      openEvents();
      loadStatuses();
      const conn = await api("GET", "/connection");
      Object.assign(state, { connection: conn.connection, inMute: conn.inMute, inConference: conn.inConference });
      render();
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });

  // --- events ------------------------------------------------------------

  function openEvents() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/api/v1/events?userId=" + encodeURIComponent(state.userId) +
      "&access_token=" + encodeURIComponent(state.token);
    const ws = new WebSocket(url);
    ws.onmessage = (m) => onEvent(JSON.parse(m.data));
    ws.onclose = () => { log("event stream closed"); state.eventsClosed = true; };
    state.ws = ws;
  }

  function call(id) { return state.calls.find((c) => c.id === id); }

  function onEvent(e) {
    state.events.push(e);
    const d = e.data || {};
    switch (e.type) {
      case "connection":
        state.connection = d.state;
        if (d.state === "disconnected") { closeMedia(); state.calls = []; state.inMute = false; state.inConference = false; state.outOfConference = false; }
        log("connection " + d.state + (d.reason ? " (" + d.reason + ")" : ""));
        break;
      case "connection.offer":
        answerOffer(d.sdp);
        break;
      case "workitem.created":
        state.calls.push({ id: d.workitemId, to: d.to, state: "dialling" });
        log("calling " + d.to);
        break;
      case "workitem.ringing":
        if (call(d.workitemId)) call(d.workitemId).state = "ringing";
        break;
      case "workitem.answered":
        if (call(d.workitemId)) call(d.workitemId).state = "talking";
        log("answered");
        break;
      case "workitem.ended":
        state.calls = state.calls.filter((c) => c.id !== d.workitemId);
        log("call ended (" + d.reason + ")");
        break;
      case "mute":
        state.inMute = !!d.inMute;
        break;
      case "conference":
        state.inConference = !!d.inConference;
        if (d.inConference) state.outOfConference = false;
        break;
      case "status":
        log("status " + d.statusId);
        $("status").value = d.statusId;
        break;
      case "acd.login": state.acd = true; break;
      case "acd.logout": state.acd = false; break;
      case "monitoring":
        log("monitoring: " + (d.mode || "") + " by " + (d.supervisorId || ""));
        break;
      default:
        log(e.type);
    }
    render();
  }

  // --- the browser as the connection ---------------------------------------

  async function answerOffer(sdp) {
    try {
      state.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false }, video: false,
      });
      const pc = new RTCPeerConnection({ iceServers: [] });
      state.pc = pc;
      pc.ontrack = (ev) => {
        const audio = new Audio();
        audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
        audio.play().catch(() => {});
        state.remote = audio;
      };
      await pc.setRemoteDescription({ type: "offer", sdp });
      state.mic.getAudioTracks().forEach((t) => pc.addTrack(t, state.mic));
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      await api("POST", "/connection/answer", { sdp: pc.localDescription.sdp });
      log("answered the connection");
    } catch (e) {
      log("could not answer: " + e.message);
    }
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  function closeMedia() {
    if (state.pc) { state.pc.close(); state.pc = null; }
    if (state.mic) { state.mic.getTracks().forEach((t) => t.stop()); state.mic = null; }
    if (state.remote) { state.remote.pause(); state.remote = null; }
  }

  // Audio statistics for tests and diagnostics.
  state.stats = async function () {
    const out = { inbound: null, outbound: null };
    if (!state.pc) return out;
    (await state.pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") out.inbound = { packetsReceived: r.packetsReceived, audioLevel: r.audioLevel, totalSamplesReceived: r.totalSamplesReceived };
      if (r.type === "outbound-rtp" && r.kind === "audio") out.outbound = { packetsSent: r.packetsSent };
    });
    return out;
  };

  // --- controls --------------------------------------------------------------

  $("connect").addEventListener("click", async () => {
    const target = document.querySelector("input[name=target]:checked").value;
    try {
      const st = await api("POST", "/connection", { target });
      state.connection = st.connection;
      render();
    } catch (e) { /* logged */ }
  });
  $("disconnect").addEventListener("click", () => api("DELETE", "/connection").catch(() => {}));
  $("dial-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { to: $("number").value.trim() };
    if ($("add-party").checked && state.calls.length > 0) body.conferenceWorkitemId = state.calls[0].id;
    try { await api("POST", "/dial", body); } catch (e) { /* logged */ }
  });
  $("hangup").addEventListener("click", () => {
    state.calls.forEach((c) => api("DELETE", "/workitems/" + c.id).catch(() => {}));
  });
  $("mute").addEventListener("click", async () => {
    try {
      const st = await api(state.inMute ? "DELETE" : "POST", "/mute");
      state.inMute = st.inMute;
      render();
    } catch (e) { /* logged */ }
  });
  $("conference").addEventListener("click", async () => {
    try {
      if (state.outOfConference) {
        await api("POST", "/conference");
        state.outOfConference = false;
      } else {
        await api("DELETE", "/conference");
        state.outOfConference = true;
      }
      render();
    } catch (e) { /* logged */ }
  });
  $("keypad").addEventListener("click", (ev) => {
    const digit = ev.target.textContent;
    if (ev.target.tagName !== "BUTTON" || !state.pc) return;
    const sender = state.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (sender && sender.dtmf) { sender.dtmf.insertDTMF(digit, 120, 70); log("DTMF " + digit); }
  });
  $("acd-login").addEventListener("click", () => api("POST", "/acd/login", {}).then(() => { state.acd = true; render(); }).catch(() => {}));
  $("acd-logout").addEventListener("click", () => api("POST", "/acd/logout").then(() => { state.acd = false; render(); }).catch(() => {}));
  $("status").addEventListener("change", () => {
    api("POST", "/users/" + state.userId + "/status", { statusId: $("status").value }).catch(() => {});
  });

  async function loadStatuses() {
    try {
      const list = await api("GET", "/statuses?rows=100");
      const sel = $("status");
      sel.innerHTML = "";
      (list.objects || []).filter((s) => s.statusId !== "offline").forEach((s) => {
        const o = document.createElement("option");
        o.value = s.statusId;
        o.textContent = s.name;
        sel.append(o);
      });
    } catch (e) { /* logged */ }
  }

  render();
})();
