// sev's browser end-to-end test. Starts `sev demo` (app + simulator, generator off), then in
// headless Chromium: signs in through the simulator's authorize page, picks a favorite from
// the suggestions, opens the stream page, triggers events in the simulator and sees them
// arrive in order without a reload, reloads and sees the history, and signs out.
// Screenshots (desktop and phone widths, dark and light) go to $E2E_ARTIFACTS.
//
// Usage: node e2e/e2e.mjs [path/to/sev]
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const bin = process.argv[2] || "target/debug/sev";
const artifacts = process.env.E2E_ARTIFACTS || "test-artifacts/e2e";
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(artifacts, { recursive: true });

const fail = (msg) => { throw new Error(msg); };
const check = (cond, msg) => { if (!cond) fail(msg); console.log("  ok: " + msg); };

function startDemo() {
  const data = mkdtempSync(join(tmpdir(), "sev-e2e-"));
  const proc = spawn(bin, ["demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0",
    "--sim-events-per-minute", "0", "--data-dir", data, "--log-format", "json"],
  { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => { log += d; });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("sev demo did not print its URLs:\n" + out + log)), 30000);
    proc.stdout.on("data", (d) => {
      out += d;
      const app = /Open:\s+(\S+)/.exec(out), sim = /Simulator:\s+(\S+)/.exec(out);
      if (app && sim) {
        clearTimeout(timer);
        resolve({ proc, app: app[1].replace(/\/$/, ""), sim: sim[1], data, log: () => log });
      }
    });
    proc.on("exit", (code) => reject(new Error("sev demo exited with " + code + ":\n" + log)));
  });
}

async function waitFor(what, f, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) fail("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function trigger(sim, body) {
  const res = await fetch(sim + "/_sim/trigger", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!res.ok) fail("trigger failed: " + res.status + " " + (await res.text()));
}

const feedTexts = (page) => page.$$eval("#feed .ev .ev-text", (els) => els.map((e) => e.textContent));

async function shots(page, name) {
  for (const [label, size] of [["desktop", { width: 1440, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
    for (const scheme of ["dark", "light"]) {
      await page.setViewportSize(size);
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: join(artifacts, `${name}-${label}-${scheme}.png`), fullPage: label === "phone" });
    }
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: "dark" });
}

async function run() {
  const demo = await startDemo();
  console.log("sev demo at " + demo.app + ", simulator at " + demo.sim);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const foreign = [];
  const errors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: "dark" });
    const page = await context.newPage();
    page.on("request", (r) => {
      const host = new URL(r.url()).hostname;
      if (!["localhost", "127.0.0.1"].includes(host)) foreign.push(r.url());
    });
    page.on("pageerror", (e) => errors.push(String(e)));

    await page.goto(demo.app + "/");
    check(await page.isVisible("text=Sign in with Twitch"), "the landing page offers sign-in");
    await shots(page, "landing");

    await page.click("text=Sign in with Twitch");
    await page.waitForURL(/\/oauth2\/authorize/);
    check(await page.isVisible("text=authorize this app"), "the simulator's authorize page opens");
    await page.check("input[name=login][value=viewer1]");
    await page.click("button[value=approve]");
    await page.waitForURL(demo.app + "/");
    check(await page.isVisible("h1:has-text('Your channels')"), "signed in, on the channels page");
    check(await page.isVisible("text=Viewer1"), "the header names the viewer");

    await page.fill("#login", "fav");
    await page.waitForSelector("#suggestions li[data-login=favstreamer]");
    check(true, "typing suggests favstreamer");
    await page.click("#suggestions li[data-login=favstreamer]");
    check((await page.inputValue("#login")) === "favstreamer", "picking a suggestion fills the login");
    await page.click("form.add button[type=submit]");
    await page.waitForURL(demo.app + "/s/favstreamer");
    check(await page.isVisible("h1:has-text('Favstreamer')"), "the stream page opens");
    await page.waitForSelector("#badge.live");
    check(true, "the live badge shows the feed is connected");
    const player = await page.getAttribute(".player iframe", "src");
    check(player.includes("channel=favstreamer") && player.includes("parent=localhost"), "the player embed names the channel and parent");

    await waitFor("favstreamer's subscriptions", async () => {
      const v = await (await fetch(demo.sim + "/_sim/subscriptions")).json();
      return (v.data || []).filter((d) => JSON.stringify(d.subscription.condition).includes("4242")).length >= 5;
    });
    await trigger(demo.sim, { type: "channel.update", broadcaster: "favstreamer", title: "First title", category: "Chess" });
    await trigger(demo.sim, { type: "channel.raid", broadcaster: "favstreamer", user: "speedrunsam", amount: 321 });
    await trigger(demo.sim, { type: "channel.update", broadcaster: "favstreamer", title: "Second title", category: "Art" });
    await waitFor("three live events", async () => (await feedTexts(page)).length >= 3);
    const live = await feedTexts(page);
    check(live.length === 3, "exactly three events arrived: " + JSON.stringify(live));
    check(live[0].includes("Second title") && live[1].includes("Raided by Speedrunsam with 321 viewers") &&
      live[2].includes("First title"), "they arrived live, newest first, in order: " + JSON.stringify(live));
    await shots(page, "stream");
    await page.click("#feed .ev:first-child summary");
    // The JSON is filled in on the details' toggle event, which fires after the click.
    await page.waitForFunction(() => document.querySelector("#feed .ev:first-child pre").textContent.includes("\"raw\""));
    check(await page.isVisible("#feed .ev:first-child pre"), "the raw event is one click away");

    const reloaded = await page.reload();
    const csp = reloaded.headers()["content-security-policy"] || "";
    check(csp.includes("script-src 'self'") && csp.includes("frame-src " + new URL(demo.sim).origin),
      "the page allows only its own scripts and the embeds' frames: " + csp);
    await page.frameLocator(".player iframe").locator("text=LIVE").waitFor();
    check(true, "the player embed renders inside the page's policy");
    const history = await feedTexts(page);
    check(JSON.stringify(history) === JSON.stringify(live), "after a reload the history shows the same events in order");
    await page.waitForSelector("#badge.live");
    await trigger(demo.sim, { type: "stream.offline", broadcaster: "favstreamer" });
    await waitFor("the offline event", async () => (await feedTexts(page)).length === 4);
    check((await feedTexts(page))[0].toLowerCase().includes("offline"), "live events continue after the reload");
    check((await page.textContent(".channel-head .pill")) === "Offline", "the header follows stream.offline");

    await page.click("button:has-text('Sign out')");
    await page.waitForURL(/\/\?signed_out=1$/);
    check(await page.isVisible("text=Sign in with Twitch"), "signed out, back on the landing page");
    await page.goto(demo.app + "/s/favstreamer");
    check(page.url().includes("/oauth2/authorize"), "the stream page needs a new sign-in");

    check(foreign.length === 0, "no request left this machine (no CDN): " + JSON.stringify(foreign));
    check(errors.length === 0, "no script errors: " + JSON.stringify(errors));
  } finally {
    await browser.close();
    demo.proc.kill("SIGTERM");
    await new Promise((r) => demo.proc.once("exit", r));
    rmSync(demo.data, { recursive: true, force: true });
  }
}

run().then(() => {
  console.log("e2e: 1 passed, 0 failed (screenshots in " + artifacts + ")");
}, (e) => {
  console.error("e2e: 0 passed, 1 failed\n" + (e && e.stack || e));
  process.exit(1);
});
