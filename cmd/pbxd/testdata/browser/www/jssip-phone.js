// window.phone for JsSIP: the in-page API run.mjs calls. Every method
// returns a promise; a failure rejects with a message that names the SIP
// status or cause, which the driver puts in the step's result.
"use strict";

(() => {
  const P = window.pbxdPage;
  let ua = null;
  let cfg = null;
  let session = null; // the current call
  let incoming = []; // incoming sessions not yet answered
  let waiters = []; // [{match(ev), resolve, reject}] resolved by events

  function emit(type, fields) {
    const ev = P.emit(type, fields);
    waiters = waiters.filter((w) => {
      const r = w.match(ev);
      if (r === undefined) return true;
      if (r instanceof Error) w.reject(r);
      else w.resolve(r);
      return false;
    });
    return ev;
  }

  // until resolves with match(ev) for the first event where it is not
  // undefined (an Error rejects).
  function until(match) {
    return new Promise((resolve, reject) => waiters.push({ match, resolve, reject }));
  }

  function status(e) {
    const m = e && (e.response || e.message);
    return m && m.status_code ? m.status_code : 0;
  }

  function wire(s, direction) {
    s.on("progress", (e) => emit("progress", { direction, status: status(e) }));
    s.on("accepted", (e) => emit("accepted", { direction, status: status(e) }));
    s.on("confirmed", () => {
      const pc = s.connection;
      P.playRemote(pc);
      P.setStatus("in call");
      emit("established", {
        direction,
        localSdp: pc.localDescription ? pc.localDescription.sdp : "",
        remoteSdp: pc.remoteDescription ? pc.remoteDescription.sdp : "",
      });
    });
    s.on("ended", (e) => {
      P.stopRemote();
      P.setStatus("call ended");
      emit("ended", { direction, originator: e.originator, cause: e.cause });
    });
    s.on("failed", (e) => {
      P.stopRemote();
      P.setStatus("call failed");
      emit("failed", { direction, originator: e.originator, cause: e.cause, status: status(e) });
    });
    s.on("newDTMF", (e) => emit("dtmf", { originator: e.originator, tone: e.dtmf.tone }));
    s.on("getusermediafailed", (e) => emit("error", { where: "getUserMedia", message: String(e) }));
    s.on("peerconnection:setremotedescriptionfailed", (e) => emit("error", { where: "setRemoteDescription", message: String(e) }));
    s.on("peerconnection:createofferfailed", (e) => emit("error", { where: "createOffer", message: String(e) }));
    s.on("peerconnection:createanswerfailed", (e) => emit("error", { where: "createAnswer", message: String(e) }));
    if (s.connection) {
      s.connection.addEventListener("iceconnectionstatechange", () => emit("ice", { state: s.connection.iceConnectionState }));
    }
  }

  // established waits for the call s to be confirmed, or fails with its
  // cause and status.
  function established(s) {
    return until((ev) => {
      if (s !== session) return undefined;
      if (ev.type === "established") return { direction: ev.direction };
      if (ev.type === "failed" || ev.type === "ended") return new Error(`call ${ev.type}: ${ev.cause}${ev.status ? " (" + ev.status + ")" : ""}`);
      return undefined;
    });
  }

  function callOptions() {
    return {
      mediaConstraints: { audio: P.audioConstraints, video: false },
      pcConfig: { iceServers: [] },
    };
  }

  function start() {
    if (ua) return;
    const socket = new JsSIP.WebSocketInterface(cfg.wsUrl);
    ua = new JsSIP.UA(
      Object.assign(
        {
          sockets: [socket],
          uri: cfg.uri,
          authorization_user: cfg.user,
          password: cfg.password,
          display_name: cfg.displayName || undefined,
          register: false,
          register_expires: cfg.expires || 600,
          user_agent: `JsSIP ${JsSIP.version} (pbxd browser test)`,
        },
        cfg.options || {},
      ),
    );
    ua.on("connected", () => emit("connected", { url: cfg.wsUrl }));
    ua.on("disconnected", (e) => emit("disconnected", { code: e && e.code, reason: e && e.reason }));
    ua.on("registered", (e) => {
      P.setStatus("registered");
      emit("registered", { status: status(e), contact: e.response.getHeader("contact") });
    });
    ua.on("unregistered", (e) => {
      P.setStatus("unregistered");
      emit("unregistered", { status: status(e) });
    });
    ua.on("registrationFailed", (e) => {
      P.setStatus("registration failed");
      emit("registrationFailed", { cause: e.cause, status: status(e) });
    });
    ua.on("newRTCSession", (e) => {
      const s = e.session;
      if (e.originator === "remote") {
        wire(s, "incoming");
        incoming.push(s);
        s.on("failed", () => (incoming = incoming.filter((x) => x !== s)));
        P.setStatus("ringing");
        emit("incoming", { from: s.remote_identity.uri.toString(), displayName: s.remote_identity.display_name || "" });
      } else {
        wire(s, "outgoing");
      }
    });
    ua.start();
  }

  window.phone = {
    library: "jssip",
    version: JsSIP.version,

    async configure(c) {
      cfg = c;
      if (c.debug) JsSIP.debug.enable("JsSIP:*");
      else JsSIP.debug.disable();
      document.getElementById("account").textContent = `${c.uri} via ${c.wsUrl}`;
      if (c.packageVersion) document.getElementById("version").textContent = c.packageVersion;
      P.setStatus("configured");
      return { library: "jssip", version: JsSIP.version };
    },

    async register() {
      start();
      if (!ua.isConnected()) {
        await until((ev) => {
          if (ev.type === "connected") return true;
          if (ev.type === "disconnected") return new Error(`the WebSocket did not connect${ev.code ? " (" + ev.code + ")" : ""}`);
          return undefined;
        });
      }
      const done = until((ev) => {
        if (ev.type === "registered") return { status: ev.status, contact: ev.contact };
        if (ev.type === "registrationFailed") return new Error(`registration failed: ${ev.cause}${ev.status ? " (" + ev.status + ")" : ""}`);
        return undefined;
      });
      ua.register();
      return done;
    },

    async unregister() {
      if (!ua || !ua.isRegistered()) return { status: 0, note: "not registered" };
      const done = until((ev) => (ev.type === "unregistered" ? { status: ev.status } : undefined));
      ua.unregister({ all: false });
      return done;
    },

    async call(target) {
      start();
      if (session && !session.isEnded()) throw new Error("a call is already up");
      session = ua.call(target, callOptions());
      return established(session);
    },

    async answer() {
      start();
      if (!incoming.length) {
        await until((ev) => (ev.type === "incoming" ? true : undefined));
      }
      session = incoming.shift();
      const done = established(session);
      session.answer(callOptions());
      return done;
    },

    async hangup() {
      if (!session || session.isEnded()) return { note: "no call" };
      const s = session;
      const done = until((ev) => (s === session && (ev.type === "ended" || ev.type === "failed") ? { cause: ev.cause } : undefined));
      s.terminate();
      return done;
    },

    async waitEnded() {
      if (!session || session.isEnded()) return { note: "no call" };
      const s = session;
      return until((ev) => (s === session && (ev.type === "ended" || ev.type === "failed") ? { originator: ev.originator, cause: ev.cause } : undefined));
    },

    async sendDTMF(tones, opts) {
      if (!session || !session.isEstablished()) throw new Error("no call up");
      const o = Object.assign({ transportType: "RFC2833", duration: 100, interToneGap: 70 }, opts || {});
      if (o.transportType === "RFC2833") {
        const watch = P.dtmfWatcher(session.connection, 2000 + tones.length * (o.duration + o.interToneGap + 200));
        if (!watch) throw new Error("no RTCDTMFSender on the call");
        session.sendDTMF(tones, o);
        return watch;
      }
      // INFO: JsSIP sends one INFO per tone, one every duration+gap.
      session.sendDTMF(tones, o);
      await new Promise((r) => setTimeout(r, tones.length * (o.duration + o.interToneGap) + 500));
      return { sent: tones, transportType: "INFO" };
    },

    async stats() {
      return P.summary(session && session.connection);
    },

    async stop() {
      if (!ua) return {};
      if (ua.isRegistered()) await window.phone.unregister().catch(() => {});
      const done = until((ev) => (ev.type === "disconnected" ? {} : undefined));
      ua.stop();
      return Promise.race([done, new Promise((r) => setTimeout(() => r({ note: "no disconnect in 3s" }), 3000))]);
    },
  };
  document.getElementById("version").textContent = JsSIP.version;
  P.setStatus("ready");
})();
