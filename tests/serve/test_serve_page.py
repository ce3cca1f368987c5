"""The web page's script run by Node against a small stand-in DOM (the full page in Chromium is
tests/serve/test_serve_browser.py): a result appears with its Download button, and an error clears both."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources

import pytest

NODE = shutil.which("node")
if NODE is None:
    pytest.skip("node is absent (apt-get install -y nodejs)", allow_module_level=True)

HARNESS = r"""
const elements = {};
function element(id) {
  if (!elements[id]) {
    const attrs = {};
    elements[id] = {
      id, hidden: id === "download", className: "", textContent: "", alt: "", value: "#00ff00", files: [],
      classList: { add() {}, remove() {} },
      addEventListener() {},
      setAttribute(k, v) { attrs[k] = String(v); },
      getAttribute(k) { return k in attrs ? attrs[k] : null; },
      removeAttribute(k) { delete attrs[k]; },
      get src() { return this.getAttribute("src"); }, set src(v) { this.setAttribute("src", v); },
      get href() { return this.getAttribute("href"); }, set href(v) { this.setAttribute("href", v); },
    };
  }
  return elements[id];
}
const radios = ["transparent", "colour", "image", "alpha"].map((v) => ({ value: v, checked: v === "transparent",
                                                                        addEventListener() {} }));
globalThis.document = {
  getElementById: element,
  querySelector: (sel) => sel.includes(":checked") ? radios.find((r) => r.checked)
                                                   : radios.find((r) => sel.includes(r.value)),
  querySelectorAll: () => radios,
};
let urls = 0;
const revoked = [];
URL.createObjectURL = () => "blob:result-" + (++urls);
URL.revokeObjectURL = (u) => revoked.push(u);
let answer = null;
globalThis.fetch = async () => answer;
const state = () => ({ src: element("result").getAttribute("src"), downloadHidden: element("download").hidden,
                       href: element("download").getAttribute("href"), status: element("status").textContent,
                       statusClass: element("status").className, revoked: [...revoked] });
(async () => {
  eval(PAGE_SCRIPT + "\nglobalThis.take = take; globalThis.run = run;");  // a strict eval keeps its functions
  const photo = new Blob([new Uint8Array([1, 2, 3])], { type: "image/jpeg" });
  photo.name = "me.jpg";
  answer = new Response(new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" }), { status: 200 });
  take(photo);
  await new Promise((r) => setTimeout(r, 50));
  const ok = state();
  answer = new Response(JSON.stringify({ error: "cannot decode the upload: not an image" }),
                        { status: 415, headers: { "content-type": "application/json" } });
  await run();
  const failed = state();
  console.log(JSON.stringify({ ok, failed }));
})();
"""


def test_an_error_clears_the_previous_result_and_its_download(tmp_path) -> None:
    page = resources.files("greenless.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    harness = tmp_path / "page.js"
    harness.write_text(HARNESS.replace("PAGE_SCRIPT", json.dumps(script)), encoding="utf-8")
    proc = subprocess.run([NODE, str(harness)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    states = json.loads(proc.stdout.strip().splitlines()[-1])
    ok, failed = states["ok"], states["failed"]
    assert ok["src"] == "blob:result-2" and not ok["downloadHidden"] and ok["href"] == ok["src"]
    assert ok["status"].startswith("Done") and ok["statusClass"] == ""
    assert failed["statusClass"] == "error" and "cannot decode" in failed["status"]
    assert failed["src"] is None and failed["downloadHidden"] and failed["href"] is None
    assert ok["src"] in failed["revoked"]  # the old result's memory is given back too
