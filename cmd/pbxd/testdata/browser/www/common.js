// What both test pages share: events towards the driver, the microphone,
// playing the remote track, the getStats summary and the page's own view
// (a status line, the event log and the last statistics, for screenshots).
//
// The driver (run.mjs) exposes window.pbxdEvent before the page loads;
// every event also lands in window.pbxdPage.events, so a page opened by
// hand works too.
"use strict";

// Loopback only: the tests' traffic must stay on 127.0.0.1, but Chromium
// gathers host candidates on every interface. So the SDP the libraries
// read from a peer connection (localDescription) keeps only the
// candidates on loopback, with c= and the m= port moved to the first of
// them, and a remote description loses its other candidates before
// Chromium sees it; both are reported as "candidatesDropped" events, so
// a test can tell what a server offered.
(() => {
  const proto = RTCPeerConnection.prototype;
  const loopback = (addr) => /^127\./.test(addr) || addr === "::1";
  const filter = (sdp) => {
    const dropped = [];
    let first = null;
    const lines = sdp.split("\r\n").filter((line) => {
      const m = /^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ/.exec(line);
      if (!m) return true;
      if (loopback(m[2])) {
        if (!first && m[1].toLowerCase() === "udp") first = { addr: m[2], port: m[3] };
        return true;
      }
      dropped.push(line.slice(2));
      return false;
    });
    if (first) {
      for (let i = 0; i < lines.length; i++) {
        if (/^c=IN IP[46] /.test(lines[i])) lines[i] = `c=IN ${first.addr.includes(":") ? "IP6" : "IP4"} ${first.addr}`;
        else if (/^m=audio \d+ /.test(lines[i])) lines[i] = lines[i].replace(/^m=audio \d+ /, `m=audio ${first.port} `);
      }
    }
    return { sdp: lines.join("\r\n"), dropped };
  };
  const report = (side, dropped) => {
    if (dropped.length && window.pbxdPage) window.pbxdPage.emit("candidatesDropped", { side, candidates: dropped });
  };
  const local = Object.getOwnPropertyDescriptor(proto, "localDescription");
  Object.defineProperty(proto, "localDescription", {
    configurable: true,
    get() {
      const d = local.get.call(this);
      if (!d || !d.sdp) return d;
      const f = filter(d.sdp);
      if (f.dropped.length && !this.pbxdReported) {
        this.pbxdReported = true;
        report("local", f.dropped);
      }
      return new RTCSessionDescription({ type: d.type, sdp: f.sdp });
    },
  });
  const setRemote = proto.setRemoteDescription;
  proto.setRemoteDescription = function (d, ...rest) {
    if (d && d.sdp) {
      const f = filter(d.sdp);
      report("remote", f.dropped);
      d = { type: d.type, sdp: f.sdp };
    }
    return setRemote.call(this, d, ...rest);
  };
})();

window.pbxdPage = (() => {
  const t0 = performance.now();
  const events = [];
  let remoteAudio = null;
  let analyser = null; // of the remote audio, for its loudest frequency
  let audioCtx = null;

  function el(id) {
    return document.getElementById(id);
  }

  function setStatus(text) {
    const s = el("status");
    if (s) s.textContent = text;
  }

  // emit records an event, shows it and hands it to the driver.
  function emit(type, fields) {
    const ev = Object.assign({ type, t: Math.round(performance.now() - t0) }, fields || {});
    events.push(ev);
    const log = el("events");
    if (log) {
      const li = document.createElement("li");
      const extra = Object.entries(ev)
        .filter(([k]) => k !== "type" && k !== "t")
        .map(([k, v]) => (/Sdp$/.test(k) ? `${k}=(${String(v).split("\r\n").length} lines)` : `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`))
        .join(" ");
      li.textContent = `${(ev.t / 1000).toFixed(2)}s ${type} ${extra}`;
      log.appendChild(li);
    }
    if (typeof window.pbxdEvent === "function") {
      window.pbxdEvent(ev).catch(() => {});
    }
    return ev;
  }

  // Chrome's echo canceller, noise suppressor and gain control squash a
  // steady tone: the fake microphone's tone must reach the wire as it is.
  const audioConstraints = {
    echoCancellation: false,
    noiseSuppression: false,
    autoGainControl: false,
  };

  async function microphone() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints, video: false });
    const track = stream.getAudioTracks()[0];
    emit("microphone", { label: track ? track.label : "", settings: track ? track.getSettings() : {} });
    return stream;
  }

  // playRemote plays the peer connection's received audio. Chrome keeps
  // inbound audioLevel and totalSamplesReceived at 0 unless the remote
  // track is played.
  function playRemote(pc) {
    const stream = new MediaStream();
    for (const r of pc.getReceivers()) {
      if (r.track && r.track.kind === "audio") stream.addTrack(r.track);
    }
    if (remoteAudio) {
      remoteAudio.pause();
      remoteAudio.srcObject = null;
    }
    remoteAudio = new Audio();
    remoteAudio.srcObject = stream;
    // Web Audio hears a remote WebRTC track only while a media element
    // plays it too, as here.
    try {
      audioCtx = audioCtx || new AudioContext();
      analyser = audioCtx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0.5;
      audioCtx.createMediaStreamSource(stream).connect(analyser);
      audioCtx.resume().catch(() => {});
    } catch (e) {
      emit("error", { where: "AudioContext", message: String(e) });
    }
    remoteAudio
      .play()
      .then(() => emit("remotePlaying", { tracks: stream.getAudioTracks().length }))
      .catch((e) => emit("error", { where: "play", message: String(e) }));
    return stream;
  }

  // remotePeak is the loudest frequency of the remote audio now (above
  // 100 Hz), with its level in dBFS.
  function remotePeak() {
    if (!analyser) return null;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const hzPerBin = audioCtx.sampleRate / analyser.fftSize;
    let best = -1;
    for (let i = Math.ceil(100 / hzPerBin); i < bins.length; i++) {
      if (best < 0 || bins[i] > bins[best]) best = i;
    }
    if (best < 0 || !isFinite(bins[best])) return { hz: 0, db: -Infinity };
    return { hz: Math.round(best * hzPerBin), db: Math.round(bins[best] * 10) / 10 };
  }

  function stopRemote() {
    analyser = null;
    if (remoteAudio) {
      remoteAudio.pause();
      remoteAudio.srcObject = null;
      remoteAudio = null;
    }
  }

  function pick(r, keys) {
    const o = {};
    for (const k of keys) if (r[k] !== undefined) o[k] = r[k];
    return o;
  }

  // summary is what the Go tests assert on, from pc.getStats().
  async function summary(pc) {
    const out = {
      connectionState: pc ? pc.connectionState : "none",
      iceConnectionState: pc ? pc.iceConnectionState : "none",
      inbound: null,
      outbound: null,
      source: null,
      codec: "",
      inboundCodec: "",
      outboundCodec: "",
      selectedPair: null,
      remoteAudio: remoteAudio
        ? {
            paused: remoteAudio.paused,
            currentTime: remoteAudio.currentTime,
            readyState: remoteAudio.readyState,
          }
        : null,
      remotePeak: remotePeak(),
    };
    if (!pc) return out;
    const report = await pc.getStats();
    let transport = null;
    report.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        out.inbound = pick(r, ["ssrc", "packetsReceived", "packetsLost", "bytesReceived", "jitter", "audioLevel", "totalAudioEnergy", "totalSamplesReceived", "concealedSamples", "codecId"]);
      } else if (r.type === "outbound-rtp" && r.kind === "audio") {
        out.outbound = pick(r, ["ssrc", "packetsSent", "bytesSent", "codecId"]);
      } else if (r.type === "media-source" && r.kind === "audio") {
        out.source = pick(r, ["audioLevel", "totalAudioEnergy", "totalSamplesDuration"]);
      } else if (r.type === "transport") {
        transport = r;
      }
    });
    const codec = (id) => (id && report.get(id) ? report.get(id).mimeType : "");
    out.inboundCodec = codec(out.inbound && out.inbound.codecId);
    out.outboundCodec = codec(out.outbound && out.outbound.codecId);
    out.codec = out.outboundCodec || out.inboundCodec;
    if (transport) {
      out.dtlsState = transport.dtlsState;
      const pair = transport.selectedCandidatePairId && report.get(transport.selectedCandidatePairId);
      if (pair) {
        const cand = (id) => {
          const c = report.get(id);
          return c ? `${c.candidateType} ${c.protocol} ${c.address}:${c.port}` : "";
        };
        out.selectedPair = { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId), state: pair.state };
      }
    }
    showStats(out);
    return out;
  }

  function showStats(s) {
    const box = el("stats");
    if (box) box.textContent = JSON.stringify(s, null, 1);
  }

  // dtmfWatcher reports each RFC 4733 tone the RTCDTMFSender of pc sends
  // and resolves once its buffer is empty (or after limit ms).
  function dtmfWatcher(pc, limit) {
    const sender = pc && pc.getSenders().find((s) => s.dtmf);
    if (!sender) return null;
    return new Promise((resolve) => {
      const sent = [];
      const done = () => {
        sender.dtmf.removeEventListener("tonechange", onTone);
        clearTimeout(timer);
        resolve({ sent: sent.join(""), canInsertDTMF: sender.dtmf.canInsertDTMF });
      };
      const onTone = (e) => {
        if (e.tone) {
          sent.push(e.tone);
          emit("dtmfSent", { tone: e.tone, transport: "RFC2833" });
        } else {
          done();
        }
      };
      const timer = setTimeout(done, limit);
      sender.dtmf.addEventListener("tonechange", onTone);
    });
  }

  return { emit, setStatus, microphone, playRemote, stopRemote, summary, dtmfWatcher, audioConstraints, events };
})();
