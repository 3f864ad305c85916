// window.phone for SIP.js: the same in-page API as jssip-phone.js. SIP.js
// is served as the ES modules it ships (node_modules/sip.js/lib at
// /sip.js/), unbundled.
import { Inviter, Registerer, RegistererState, SessionState, UserAgent } from "/sip.js/index.js";
import * as SIP from "/sip.js/index.js";

const P = window.pbxdPage;
let ua = null;
let registerer = null;
let cfg = null;
let session = null; // the current call
let incoming = []; // invitations not yet answered
let waiters = [];

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

function until(match) {
  return new Promise((resolve, reject) => waiters.push({ match, resolve, reject }));
}

function pcOf(s) {
  return s && s.sessionDescriptionHandler ? s.sessionDescriptionHandler.peerConnection : null;
}

function sdhOptions() {
  return { constraints: { audio: P.audioConstraints, video: false } };
}

function wire(s, direction) {
  let ended = false;
  s.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      const pc = pcOf(s);
      P.playRemote(pc);
      P.setStatus("in call");
      pc.addEventListener("iceconnectionstatechange", () => emit("ice", { state: pc.iceConnectionState }));
      emit("established", {
        direction,
        localSdp: pc.localDescription ? pc.localDescription.sdp : "",
        remoteSdp: pc.remoteDescription ? pc.remoteDescription.sdp : "",
      });
    } else if (state === SessionState.Terminated && !ended) {
      ended = true;
      P.stopRemote();
      P.setStatus("call ended");
      // After the request delegate's onReject, which tells why.
      setTimeout(() => {
        const how = s.pbxdFailure;
        if (how) emit("failed", { direction, cause: how.cause, status: how.status });
        else emit("ended", { direction, originator: s.pbxdByeFrom || "remote", cause: "Terminated" });
      }, 0);
    }
  });
  s.delegate = {
    onBye(bye) {
      s.pbxdByeFrom = "remote";
      bye.accept();
    },
    onInfo(info) {
      const body = info.request.body || "";
      const m = /Signal=\s*([0-9A-D#*])/i.exec(body);
      emit("dtmf", { originator: "remote", tone: m ? m[1] : "", transport: "INFO" });
      info.accept();
    },
  };
}

function established(s) {
  return until((ev) => {
    if (s !== session) return undefined;
    if (ev.type === "established") return { direction: ev.direction };
    if (ev.type === "failed" || ev.type === "ended") return new Error(`call ${ev.type}: ${ev.cause}${ev.status ? " (" + ev.status + ")" : ""}`);
    return undefined;
  });
}

async function start() {
  if (ua) return;
  const debug = !!cfg.debug;
  ua = new UserAgent(
    Object.assign(
      {
        uri: UserAgent.makeURI(cfg.uri),
        transportOptions: { server: cfg.wsUrl, traceSip: debug },
        authorizationUsername: cfg.user,
        authorizationPassword: cfg.password,
        displayName: cfg.displayName || undefined,
        userAgentString: `SIP.js ${SIP.version} (pbxd browser test)`,
        // No STUN server: offline, the default one costs the whole ICE
        // gathering timeout.
        sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] }, iceGatheringTimeout: 3000 },
        logBuiltinEnabled: false,
        logLevel: debug ? "debug" : "warn",
        logConnector: (level, category, label, content) => console.log(`[${level}] ${category}${label ? " " + label : ""}: ${content}`),
        delegate: {
          onConnect: () => emit("connected", { url: cfg.wsUrl }),
          onDisconnect: (err) => emit("disconnected", { reason: err ? String(err) : "" }),
          onInvite: (inv) => {
            wire(inv, "incoming");
            incoming.push(inv);
            P.setStatus("ringing");
            emit("incoming", { from: inv.remoteIdentity.uri.toString(), displayName: inv.remoteIdentity.displayName || "" });
          },
        },
      },
      cfg.options || {},
    ),
  );
  await ua.start();
}

window.phone = {
  library: "sipjs",
  version: SIP.version,

  async configure(c) {
    cfg = c;
    document.getElementById("account").textContent = `${c.uri} via ${c.wsUrl}`;
    if (c.packageVersion) document.getElementById("version").textContent = c.packageVersion;
    P.setStatus("configured");
    return { library: "sipjs", version: SIP.version };
  },

  async register() {
    await start();
    if (!registerer) {
      registerer = new Registerer(ua, { expires: cfg.expires || 600 });
      registerer.stateChange.addListener((state) => {
        if (state === RegistererState.Registered) {
          P.setStatus("registered");
          // After the request delegate's onAccept, which keeps the Contact.
          setTimeout(() => emit("registered", { status: 200, contact: (registerer.pbxdContact || []).join(", ") }), 0);
        } else if (state === RegistererState.Unregistered) {
          P.setStatus("unregistered");
          emit("unregistered", {});
        }
      });
    }
    const done = until((ev) => {
      if (ev.type === "registered") return { status: ev.status, contact: ev.contact };
      if (ev.type === "registrationFailed") return new Error(`registration failed: ${ev.cause}${ev.status ? " (" + ev.status + ")" : ""}`);
      return undefined;
    });
    await registerer.register({
      requestDelegate: {
        onAccept: (res) => {
          registerer.pbxdContact = res.message.getHeaders("contact");
        },
        onReject: (res) => {
          P.setStatus("registration failed");
          emit("registrationFailed", { cause: res.message.reasonPhrase, status: res.message.statusCode });
        },
      },
    });
    return done;
  },

  async unregister() {
    if (!registerer || registerer.state !== RegistererState.Registered) return { status: 0, note: "not registered" };
    const done = until((ev) => (ev.type === "unregistered" ? { status: 200 } : undefined));
    await registerer.unregister();
    return done;
  },

  async call(target) {
    await start();
    if (session && session.state !== SessionState.Terminated) throw new Error("a call is already up");
    const uri = UserAgent.makeURI(target);
    if (!uri) throw new Error(`bad target ${target}`);
    const inv = new Inviter(ua, uri, { sessionDescriptionHandlerOptions: sdhOptions() });
    wire(inv, "outgoing");
    session = inv;
    const done = established(inv);
    inv
      .invite({
        requestDelegate: {
          onProgress: (res) => emit("progress", { direction: "outgoing", status: res.message.statusCode }),
          onAccept: (res) => emit("accepted", { direction: "outgoing", status: res.message.statusCode }),
          onReject: (res) => {
            inv.pbxdFailure = { cause: res.message.reasonPhrase, status: res.message.statusCode };
          },
        },
      })
      .catch((e) => emit("error", { where: "invite", message: String(e) }));
    return done;
  },

  async answer() {
    await start();
    if (!incoming.length) {
      await until((ev) => (ev.type === "incoming" ? true : undefined));
    }
    session = incoming.shift();
    const done = established(session);
    session.accept({ sessionDescriptionHandlerOptions: sdhOptions() }).catch((e) => emit("error", { where: "accept", message: String(e) }));
    return done;
  },

  async hangup() {
    const s = session;
    if (!s || s.state === SessionState.Terminated) return { note: "no call" };
    const done = until((ev) => (s === session && (ev.type === "ended" || ev.type === "failed") ? { cause: ev.cause } : undefined));
    s.pbxdByeFrom = "local";
    if (s.state === SessionState.Established) await s.bye();
    else if (s instanceof Inviter) await s.cancel();
    else await s.reject();
    return done;
  },

  async waitEnded() {
    const s = session;
    if (!s || s.state === SessionState.Terminated) return { note: "no call" };
    return until((ev) => (s === session && (ev.type === "ended" || ev.type === "failed") ? { originator: ev.originator, cause: ev.cause } : undefined));
  },

  async sendDTMF(tones, opts) {
    const s = session;
    if (!s || s.state !== SessionState.Established) throw new Error("no call up");
    const o = Object.assign({ transportType: "RFC2833", duration: 100, interToneGap: 70 }, opts || {});
    if (o.transportType === "RFC2833") {
      const watch = P.dtmfWatcher(pcOf(s), 2000 + tones.length * (o.duration + o.interToneGap + 200));
      if (!watch) throw new Error("no RTCDTMFSender on the call");
      if (!s.sessionDescriptionHandler.sendDtmf(tones, { duration: o.duration, interToneGap: o.interToneGap })) {
        throw new Error("sendDtmf refused the tones (no telephone-event negotiated?)");
      }
      return watch;
    }
    // INFO, one request per tone (application/dtmf-relay), each answered
    // before the next.
    const statuses = [];
    for (const tone of tones) {
      let status = 0;
      await s.info({
        requestOptions: {
          body: { contentDisposition: "render", contentType: "application/dtmf-relay", content: `Signal=${tone}\r\nDuration=${o.duration}\r\n` },
        },
        requestDelegate: {
          onAccept: (res) => (status = res.message.statusCode),
          onReject: (res) => (status = res.message.statusCode),
        },
      });
      const t0 = Date.now();
      while (!status && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
      statuses.push(status);
      emit("dtmfSent", { tone, transport: "INFO", status });
      await new Promise((r) => setTimeout(r, o.interToneGap));
    }
    return { sent: tones, transportType: "INFO", statuses };
  },

  async stats() {
    return P.summary(pcOf(session));
  },

  async stop() {
    if (!ua) return {};
    if (registerer && registerer.state === RegistererState.Registered) {
      await window.phone.unregister().catch(() => {});
    }
    await ua.stop();
    return {};
  },
};
document.getElementById("version").textContent = SIP.version;
P.setStatus("ready");
