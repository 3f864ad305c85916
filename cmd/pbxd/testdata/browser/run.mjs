// Driver of one browser scenario: serves the test pages from 127.0.0.1,
// launches headless Chromium (Debian's, through playwright-core) with a
// fake microphone that plays a WAV file, opens jssip.html or sipjs.html,
// runs the scenario's steps through the page's window.phone API and prints
// one JSON result on stdout. See README.md for the scenario and result
// formats.
//
//   node run.mjs scenario.json      (or the JSON itself, or - for stdin)
//
// stderr carries progress as JSON lines for the Go side to follow while
// the scenario runs: {"browserPid":N} once Chromium runs (it leads its own
// process group), {"event":{...}} for each page event, {"step":{...}}
// after each step, {"waiting":"name"} when a waitSignal step waits for
// the line "name" on stdin. Exit status: 0 the scenario passed, 1 a step failed,
// 2 the harness itself failed (bad scenario, no browser).

import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, resolve, sep } from "node:path";
import { bundle, here } from "./build.mjs";

const started = Date.now();
const since = () => Date.now() - started;

function progress(obj) {
  process.stderr.write(JSON.stringify(obj) + "\n");
}

function readScenario() {
  const arg = process.argv[2];
  let text;
  if (!arg || arg === "-") text = readFileSync(0, "utf8");
  else if (arg.trimStart().startsWith("{")) text = arg;
  else text = readFileSync(arg, "utf8");
  const sc = JSON.parse(text);
  const def = {
    name: sc.library || "browser",
    library: "jssip",
    chromium: "/usr/bin/chromium",
    timeoutMs: 60000,
    stepTimeoutMs: 20000,
    expires: 600,
    steps: [],
  };
  const out = Object.assign(def, sc);
  if (out.pageUrl) {
    // A page pbxd serves: no SIP library, the steps drive its controls.
    if (!/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(out.pageUrl)) throw new Error("scenario: pageUrl must be on loopback");
    out.library = "";
  } else {
    if (!["jssip", "sipjs"].includes(out.library)) throw new Error(`library ${out.library}: want jssip or sipjs`);
    for (const k of ["wsUrl", "uri", "user", "password"]) {
      if (typeof out[k] !== "string" || !out[k]) throw new Error(`scenario: ${k} is required`);
    }
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(out.name)) throw new Error(`scenario: name ${out.name} must be a plain file name`);
  if (out.fakeAudio && !out.fakeAudio.startsWith("/")) throw new Error("scenario: fakeAudio must be an absolute path");
  return out;
}

// --- the page server ---

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".map": "application/json" };

// serve answers GET requests for the pages (www/), the JsSIP bundle (in
// memory) and SIP.js's ES modules (node_modules/sip.js/lib), nothing else.
async function startServer() {
  const built = await bundle();
  const www = join(here, "www");
  const sipjs = join(here, "node_modules", "sip.js", "lib");
  const inside = (root, rel) => {
    const p = normalize(join(root, rel));
    return p.startsWith(root + sep) && existsSync(p) && statSync(p).isFile() ? p : null;
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    let path = decodeURIComponent(url.pathname);
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    let body = null;
    if (req.method !== "GET") {
      res.writeHead(405).end();
      return;
    }
    if (built.has(path)) body = built.get(path);
    else {
      const file = path.startsWith("/sip.js/") ? inside(sipjs, path.slice("/sip.js/".length)) : inside(www, path.slice(1));
      if (file) body = readFileSync(file);
    }
    if (!body) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "Content-Type": types[extname(path)] || "application/octet-stream", "Cache-Control": "no-store" });
    res.end(body);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  return server;
}

// --- helpers ---

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what}: no result in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function message(e) {
  let m = e && e.message ? e.message : String(e);
  m = m.replace(/^page\.evaluate: /, "").replace(/^Error: /, "");
  const nl = m.indexOf("\n    at ");
  return nl > 0 ? m.slice(0, nl) : m;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// signals are the lines on stdin (when the scenario came from a file or
// the command line): names that waitSignal steps wait for.
const signals = (() => {
  const seen = new Map();
  const waiting = new Map();
  let buf = "";
  const fromStdin = process.argv[2] && process.argv[2] !== "-";
  if (fromStdin) {
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const name = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (waiting.has(name)) {
          waiting.get(name)();
          waiting.delete(name);
        } else seen.set(name, true);
      }
    });
    process.stdin.on("error", () => {});
  }
  return {
    next(name) {
      if (!fromStdin) return Promise.reject(new Error("waitSignal needs the scenario as a file, stdin for the signals"));
      if (seen.delete(name)) return Promise.resolve({ signal: name });
      return new Promise((r) => waiting.set(name, () => r({ signal: name })));
    },
    close() {
      if (fromStdin) process.stdin.destroy();
    },
  };
})();

// --- main ---

async function main() {
  let sc;
  try {
    sc = readScenario();
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: `scenario: ${message(e)}` }) + "\n");
    return 2;
  }
  const result = {
    ok: false,
    error: "",
    name: sc.name,
    library: sc.library,
    version: "",
    reportedVersion: "",
    browser: "",
    origin: "",
    elapsedMs: 0,
    steps: [],
    events: [],
    stats: [],
    sip: [],
    screenshots: [],
    consoleLog: "",
    pageErrors: [],
  };
  let artifacts = null;
  if (sc.artifacts) {
    artifacts = resolve(sc.artifacts);
    mkdirSync(artifacts, { recursive: true });
  }
  let consoleOut = null;
  if (artifacts) {
    result.consoleLog = join(artifacts, `${sc.name}-console.log`);
    consoleOut = createWriteStream(result.consoleLog);
  }
  const logLine = (line) => consoleOut && consoleOut.write(`${(since() / 1000).toFixed(3)} ${line}\n`);

  let server = null;
  let browserServer = null;
  let browser = null;
  let page = null;
  let finished = false;

  const shoot = async (label) => {
    if (!artifacts || !page) return;
    const file = join(artifacts, `${sc.name}-${label}.png`);
    try {
      await withTimeout(page.screenshot({ path: file, fullPage: true }), 5000, "screenshot");
      result.screenshots.push(file);
    } catch (e) {
      logLine(`screenshot ${label}: ${message(e)}`);
    }
  };
  const phone = (method, args, ms) =>
    withTimeout(
      page.evaluate(([m, a]) => window.phone[m](...a), [method, args || []]),
      ms,
      method,
    );

  const cleanup = async () => {
    if (page) {
      await shoot("final");
      // Hang up what is still up and unregister: phone.stop does both.
      await phone("hangup", [], 5000).catch(() => {});
      await phone("stop", [], 5000).catch((e) => logLine(`stop: ${message(e)}`));
    }
    if (browser) await withTimeout(browser.close(), 10000, "closing the browser").catch(() => {});
    if (browserServer) await withTimeout(browserServer.close(), 10000, "closing Chromium").catch(() => browserServer.kill());
    if (server) {
      server.closeAllConnections();
      server.close();
    }
    result.elapsedMs = since();
    if (consoleOut) await new Promise((r) => consoleOut.end(r));
  };

  const deadline = setTimeout(() => {
    if (finished) return;
    result.error = result.error || `scenario timed out after ${sc.timeoutMs} ms`;
    finish(1);
  }, sc.timeoutMs);
  let finishing = null;
  const finish = (code) => {
    if (!finishing) {
      finishing = (async () => {
        finished = true;
        clearTimeout(deadline);
        await cleanup();
        signals.close();
        process.stdout.write(JSON.stringify(result) + "\n");
        return code;
      })();
    }
    return finishing;
  };
  process.on("SIGTERM", () => {
    result.error = result.error || "stopped by SIGTERM";
    finish(1).then((c) => process.exit(c));
  });

  try {
    server = await startServer();
    result.origin = `http://127.0.0.1:${server.address().port}`;
    const args = [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--autoplay-policy=no-user-gesture-required",
      // Candidates on 127.0.0.1 (the tests run on loopback only).
      "--allow-loopback-in-peer-connection",
      // Nothing but the test's own traffic leaves the browser.
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      "--disable-gpu",
    ];
    if (sc.fakeAudio) args.push(`--use-file-for-fake-audio-capture=${sc.fakeAudio}`);
    // launchServer makes a fresh profile (--user-data-dir) in TMPDIR and
    // tells the browser's PID, which the Go side keeps to stop it.
    browserServer = await withTimeout(
      chromium.launchServer({ executablePath: sc.chromium, headless: true, args, handleSIGTERM: false, handleSIGINT: false }),
      30000,
      "launching Chromium",
    );
    progress({ browserPid: browserServer.process().pid });
    browser = await withTimeout(chromium.connect(browserServer.wsEndpoint()), 15000, "connecting to Chromium");
    result.browser = browser.version();
    // pbxd's pages forbid eval in their Content-Security-Policy; the test
    // steps (waitFor, evaluate) are evaluated as strings, so the driver's
    // own scripts bypass it. The page itself runs under it unchanged.
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, bypassCSP: !!sc.pageUrl });
    await context.grantPermissions(["microphone"], { origin: result.origin });
    page = await context.newPage();
    page.on("console", (m) => logLine(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => {
      result.pageErrors.push(message(e));
      logLine(`pageerror: ${message(e)}`);
    });
    page.on("websocket", (ws) => {
      logLine(`websocket ${ws.url()}`);
      ws.on("framesent", (f) => result.sip.push({ t: since(), dir: "out", text: String(f.payload) }));
      ws.on("framereceived", (f) => result.sip.push({ t: since(), dir: "in", text: String(f.payload) }));
      ws.on("socketerror", (e) => logLine(`websocket error: ${e}`));
      ws.on("close", () => logLine("websocket closed"));
    });
    await page.exposeFunction("pbxdEvent", (ev) => {
      ev.at = since();
      result.events.push(ev);
      progress({ event: ev });
      logLine(`event ${JSON.stringify(ev)}`);
    });
    if (sc.pageUrl) {
      // A page pbxd serves itself (the /phone softphone), driven through
      // its controls with click/fill/check/waitFor/evaluate steps.
      const origin = new URL(sc.pageUrl).origin;
      await context.grantPermissions(["microphone"], { origin });
      await withTimeout(page.goto(sc.pageUrl), 15000, "loading the page");
    } else {
      await withTimeout(page.goto(`${result.origin}/${sc.library}.html`), 15000, "loading the page");
      await withTimeout(page.waitForFunction(() => window.phone !== undefined), 10000, "window.phone");
      // The npm package's version (SIP.js 0.21.2 still calls itself 0.21.1).
      const pkg = JSON.parse(readFileSync(join(here, "node_modules", sc.library === "jssip" ? "jssip" : "sip.js", "package.json"), "utf8"));
      const info = await phone("configure", [{ wsUrl: sc.wsUrl, uri: sc.uri, user: sc.user, password: sc.password, displayName: sc.displayName || "", expires: sc.expires, options: sc.options || {}, debug: !!sc.debug, packageVersion: pkg.version }], 5000);
      result.version = pkg.version;
      result.reportedVersion = info.version;
    }

    for (const [i, step] of sc.steps.entries()) {
      const ms = step.timeoutMs || sc.stepTimeoutMs;
      const rec = { do: step.do, name: step.name || "", ok: false, ms: 0, at: since() };
      const t = Date.now();
      try {
        switch (step.do) {
          case "register":
          case "unregister":
          case "answer":
          case "hangup":
          case "waitEnded":
            rec.value = await phone(step.do, [], ms);
            break;
          case "call":
            rec.value = await phone("call", [step.target], ms);
            break;
          case "dtmf":
            rec.value = await phone("sendDTMF", [step.tones, { transportType: step.transportType || "RFC2833", duration: step.duration || 100, interToneGap: step.interToneGap || 70 }], ms);
            break;
          case "stats": {
            const s = await phone("stats", [], ms);
            s.label = step.label || `step ${i + 1}`;
            s.at = since();
            result.stats.push(s);
            rec.value = s;
            break;
          }
          case "wait":
            await sleep(step.ms || 0);
            break;
          case "waitEvent": {
            const want = step.count || 1;
            const t0 = Date.now();
            while (result.events.filter((e) => e.type === step.event).length < want) {
              if (Date.now() - t0 > ms) throw new Error(`no ${step.event} event in ${ms} ms`);
              await sleep(50);
            }
            rec.value = result.events.filter((e) => e.type === step.event).slice(-1)[0];
            break;
          }
          case "waitSignal": {
            // The Go side lets the scenario go on by writing the name as a
            // line on stdin (browserRun.Signal).
            progress({ waiting: step.name });
            await withTimeout(signals.next(step.name), ms, `signal ${step.name}`);
            break;
          }
          case "screenshot":
            await shoot(step.name || `step${i + 1}`);
            break;
          // Page-driving steps (for pages served by pbxd).
          case "click": {
            // A click's effect may start before page.click returns, so both
            // ends are recorded.
            const started = Date.now();
            await withTimeout(page.click(step.selector), ms, `click ${step.selector}`);
            rec.value = { started, wall: Date.now() };
            break;
          }
          case "fill":
            await withTimeout(page.fill(step.selector, step.value || ""), ms, `fill ${step.selector}`);
            break;
          case "check":
            await withTimeout(page.check(step.selector), ms, `check ${step.selector}`);
            break;
          case "waitFor":
            // step.expr is a JavaScript expression evaluated in the page.
            await withTimeout(page.waitForFunction(step.expr, null, { timeout: ms, polling: 50 }), ms + 1000, `waitFor ${step.expr}`);
            rec.value = { wall: Date.now() };
            break;
          case "evaluate": {
            const v = await withTimeout(page.evaluate(`(async () => (${step.expr}))()`), ms, `evaluate ${step.expr}`);
            rec.value = { wall: Date.now(), result: v };
            break;
          }
          default:
            throw new Error(`unknown step ${step.do}`);
        }
        rec.ok = true;
      } catch (e) {
        rec.error = message(e);
      }
      rec.ms = Date.now() - t;
      result.steps.push(rec);
      progress({ step: rec });
      if (finished) return finishing;
      if (!rec.ok && !step.optional) {
        result.error = `step ${i + 1} (${step.do}): ${rec.error}`;
        await shoot(`failed-step${i + 1}`);
        return finish(1);
      }
    }
    result.ok = true;
    return finish(0);
  } catch (e) {
    result.error = result.error || `harness: ${message(e)}`;
    await finish(2);
    return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stdout.write(JSON.stringify({ ok: false, error: `harness: ${message(e)}` }) + "\n");
    process.exit(2);
  },
);
