"""The stepper in a real browser (headless Chromium, driven by playwright).

Opened: pages written by `save_html` (the README example, one sample through an MLP
2-4-4-1 with linear neurons and with `expand=True`), and JupyterLab running notebook 01.
After every step (a click on "Next step", the arrow keys) the tests check what a learner
sees: the current node lies inside the visible picture, its text is at least 10 px high, no
node moved in SVG coordinates, the explanation changed, and the console shows no error. At
the end, the page's full-precision gradients are exactly `backward()`'s. On the sample a
learner tries first (MLP 2-4-4-1 and its output, both kinds of neuron) every step is checked
for the view's contract too: the root wholly in sight at step 0, then the current node, and
its inputs wherever they fit at a 10 px font; and no explanation line breaks inside a name.

Screenshots go to tests/artifacts/ (git-ignored; `.ci/run` prints the path): one mid-pass
per page (docs/images/stepper.png is the README example's), and one of every failure.
The tests skip only where playwright or chromium is missing; under CI they must run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograd import BackwardStepper, Value, topological_order
from autograd.draw import dot_available
from nn import MLP

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1000  # the width the README example and the MLP sample must read well at


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if CHROMIUM is None:
        return "chromium is not installed"
    if not dot_available():
        return "Graphviz's dot is not installed"
    return ""


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI, but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900}, reduced_motion="reduce")
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    report = getattr(request.node, "report_call", None)  # set by conftest.py
    if report is not None and report.failed:
        with contextlib.suppress(Exception):
            pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


# What the page shows, read in one call: the contract classes, the current node's box and
# text size on screen, every node's shape in SVG coordinates, the explanation.
READ_STATE = """(root, withShapes) => {
  const viewport = root.querySelector('.crs-viewport').getBoundingClientRect();
  const groups = [...root.querySelectorAll('svg g.node')];
  const states = groups.map(
    g => ['current', 'done', 'pending'].filter(c => g.classList.contains(c)));
  const current = root.querySelector('svg g.node.current[id^="v"]');
  let box = null, textHeights = [];
  if (current) {
    const r = current.querySelector('polygon, ellipse, path').getBoundingClientRect();
    box = [r.left, r.top, r.right, r.bottom];
    textHeights = [...current.querySelectorAll('text')].map(t => t.getBoundingClientRect().height);
  }
  const shapes = {};
  for (const g of withShapes ? groups : []) {
    const b = g.querySelector('polygon, ellipse, path').getBBox();
    shapes[g.id] = [b.x, b.y, b.width, b.height].map(v => Math.round(v * 100) / 100);
  }
  const tips = {};
  for (const g of groups) {
    const t = g.querySelector('title');
    if (g.id.startsWith('v') && t) tips[g.id] = t.textContent;
  }
  return {
    viewport: [viewport.left, viewport.top, viewport.right, viewport.bottom],
    states, box, textHeights, shapes, tips,
    explanation: root.querySelector('.crs-explain').innerText,
    counter: root.querySelector('.crs-counter').textContent,
  };
}"""


def read(root, shapes=True):
    """The state of the page (every node's shape too, unless `shapes` is False)."""
    return root.evaluate(READ_STATE, shapes)


def check_step(state, first, previous):
    """The learner's view after a step (see the module docstring); node positions are
    compared when `state` holds them."""
    assert all(len(s) == 1 for s in state["states"]), "a node group without exactly one state"
    assert state["box"] is not None, f"no current node at {state['counter']}"
    left, top, right, bottom = state["box"]
    vl, vt, vr, vb = state["viewport"]
    assert vl - 0.5 <= left and right <= vr + 0.5 and vt - 0.5 <= top and bottom <= vb + 0.5, (
        f"{state['counter']}: current node {state['box']} outside the picture {state['viewport']}"
    )
    assert min(state["textHeights"]) >= 10, f"{state['counter']}: text {state['textHeights']} px"
    if state["shapes"]:
        assert state["shapes"] == first["shapes"], f"{state['counter']}: nodes moved"
    assert state["explanation"] != previous["explanation"], "the explanation did not change"


# The followed nodes on screen: the current node's groups (its box, op and constants) and
# its inputs (receiving), each shape's box in page pixels, the nodes' font size in px, the
# root's box (by id) and the visible picture.
READ_FOCUS = """(root, rootId) => {
  const rect = (g) => {
    const r = g.querySelector('polygon, ellipse, path').getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const svg = root.querySelector('.crs-canvas svg');
  const zoom = new DOMMatrix(getComputedStyle(root.querySelector('.crs-canvas')).transform).a;
  const text = svg.querySelector('g.node text');
  const fontPx = zoom * (svg.width.baseVal.value / svg.viewBox.baseVal.width) *
    parseFloat(text.getAttribute('font-size'));
  const v = root.querySelector('.crs-viewport').getBoundingClientRect();
  return {
    current: [...root.querySelectorAll('svg g.node.current')].map(rect),
    inputs: [...root.querySelectorAll('svg g.node.receiving')].map(rect),
    root: rect(root.querySelector(`svg g.node[id="${rootId}"]`)),
    fontPx, viewport: [v.left, v.top, v.right, v.bottom],
  };
}"""
MARGIN = 24  # px the view keeps free around the followed nodes (stepper.js)
READABLE_PX = 10  # the smallest font size the view follows a step at (stepper.js)


def _inside(box, viewport):
    left, top, right, bottom = box
    vl, vt, vr, vb = viewport
    return vl - 0.5 <= left and right <= vr + 0.5 and vt - 0.5 <= top and bottom <= vb + 0.5


def check_focus(root, root_id, counter):
    """At step 0 the root is wholly in sight; after a step the current node is, and its
    inputs are too wherever the current node and its inputs fit the picture (less its
    margins) at a font of READABLE_PX."""
    f = root.evaluate(READ_FOCUS, root_id)
    vp = f["viewport"]
    if counter.startswith("step 0 "):
        assert _inside(f["root"], vp), f"step 0: the root {f['root']} is outside {vp}"
        return f
    assert f["current"], f"{counter}: no current node"
    for box in f["current"]:
        assert _inside(box, vp), f"{counter}: the current node {box} is outside {vp}"
    boxes = f["current"] + f["inputs"]
    k = READABLE_PX / f["fontPx"]  # page px at the smallest readable size per px now
    width = (max(b[2] for b in boxes) - min(b[0] for b in boxes)) * k
    height = (max(b[3] for b in boxes) - min(b[1] for b in boxes)) * k
    fits = width <= vp[2] - vp[0] - 2 * MARGIN and height <= vp[3] - vp[1] - 2 * MARGIN
    f["fits"] = fits
    if fits:
        for box in f["inputs"]:
            assert _inside(box, vp), f"{counter}: an input {box} is outside {vp} (they fit)"
    return f


# Every explanation line's names that the browser broke across lines: for each occurrence
# of each name in a line's text, the distinct tops of the boxes its characters lie in.
READ_BROKEN_NAMES = """(root, names) => {
  const broken = [];
  let wrapped = 0;
  for (const line of root.querySelectorAll('.crs-explain > div')) {
    const nodes = [];
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    let text = '';
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      nodes.push([n, text.length]);
      text += n.data;
    }
    const at = (offset) => {
      let k = nodes.length - 1;
      while (k > 0 && nodes[k][1] > offset) k--;
      return [nodes[k][0], offset - nodes[k][1]];
    };
    const whole = document.createRange();
    whole.selectNodeContents(line);
    const tops = new Set([...whole.getClientRects()].map((r) => Math.round(r.top)));
    if (tops.size > 1) wrapped++;
    for (const name of names) {
      for (let i = text.indexOf(name); i >= 0; i = text.indexOf(name, i + 1)) {
        const range = document.createRange();
        range.setStart(...at(i));
        const end = at(i + name.length - 1);  // the last character's node
        range.setEnd(end[0], end[1] + 1);
        const rows = new Set([...range.getClientRects()].filter((r) => r.width > 0)
          .map((r) => Math.round(r.top)));
        if (rows.size > 1) broken.push(name);
      }
    }
  }
  return { broken, wrapped };
}"""


def step_through(page, root, clicks, keys, errors, shapes_every=1):
    """Click "Next step" `clicks` times, then press each of `keys`, checking every step
    (node positions at every `shapes_every`-th step: reading them all is slow on a big
    graph)."""
    first = previous = read(root)
    assert "step 0 of" in first["counter"]
    for _ in range(clicks):
        page.get_by_role("button", name="Next step").first.click()
        state = read(root)
        check_step(state, first, previous)
        previous = state
    for k, key in enumerate(keys):
        root.press(key)
        state = read(root, shapes=k % shapes_every == 0)
        check_step(state, first, previous)
        previous = state
    assert errors == []
    return first, previous


def final_grads(root) -> dict[str, str]:
    """Each value's full-precision grad from its box's tooltip, by SVG id."""
    tips = read(root)["tips"]
    return {k: re.search(r"grad (\S+) \(", t).group(1) for k, t in tips.items()}


def readme_example():
    x, w, b = Value(1.0, label="x"), Value(-2.0, label="w"), Value(0.5, label="b")
    return (x * w + b).tanh()


def mlp_sample(expand: bool, sizes=(4, 4, 1)):
    from nn import MLP

    model = MLP(2, list(sizes), seed=0, expand=expand)
    out = model([Value(0.5, label="x[0]"), Value(-1.5, label="x[1]")])
    loss = (out - 1.0) ** 2
    loss.label = "loss"
    return loss


def expected_grads(make) -> dict[str, str]:
    root = make()
    root.backward()
    return {f"v{i}": repr(v.grad + 0.0) for i, v in enumerate(topological_order(root))}


def open_page(page, tmp_path, make, name):
    path = tmp_path / f"{name}.html"
    BackwardStepper(make()).save_html(path)
    page.goto(path.as_uri())
    root = page.locator(".chainrule-stepper")
    root.wait_for()
    return root


def test_page_of_the_readme_example(page, tmp_path):
    root = open_page(page, tmp_path, readme_example, "readme")
    # The buttons of the contract, disabled at the ends.
    assert page.get_by_role("button", name="Previous step").is_disabled()
    assert page.get_by_role("button", name="Reset").is_disabled()
    assert page.get_by_role("button", name="Play").is_enabled()
    step_through(page, root, 2, ["ArrowRight", "ArrowLeft", "ArrowRight"], page.errors)
    assert "step 3 of 6" in read(root)["counter"]  # x * w: two inputs, mid-pass
    root.screenshot(path=str(ARTIFACTS / "stepper-readme.png"))  # docs/images/stepper.png
    # Numbers show 4 significant digits, the full number on hover (its title).
    done = readme_example()
    done.backward()
    x_grad = next(v.grad for v in topological_order(done) if v.label == "x")
    number = root.locator(".crs-explain .crs-num").nth(3)  # dL/dx's contribution
    assert number.inner_text() == "-0.3614" and number.get_attribute("title") == repr(x_grad)
    # The slider goes to any step; tooltips say what each control does.
    page.get_by_role("slider", name="Step").fill("5")
    assert "step 5 of 6" in read(root)["counter"]
    for name in ("Previous step", "Next step", "Play", "Reset"):
        assert page.get_by_role("button", name=name).get_attribute("title")
    root.press("End")
    assert page.get_by_role("button", name="Next step").is_disabled()
    assert "step 6 of 6" in read(root)["counter"]
    assert final_grads(root) == expected_grads(readme_example)
    root.press("Home")
    assert "step 0 of 6" in read(root)["counter"]
    assert page.errors == []


@pytest.mark.parametrize("expand", [False, True], ids=["linear", "expand"])
def test_page_of_an_mlp_sample(page, tmp_path, expand):
    root = open_page(page, tmp_path, lambda: mlp_sample(expand), f"mlp-{expand}")
    total = int(read(root)["counter"].split()[-1])
    # Every step of the pass: the current node is always in sight and readable.
    step_through(page, root, 6, ["ArrowRight"] * (total - 6), page.errors)
    assert final_grads(root) == expected_grads(lambda: mlp_sample(expand))
    root.press("Home")
    for _ in range(total // 2):
        root.press("ArrowRight")
    page.screenshot(path=str(ARTIFACTS / f"stepper-mlp-{'expand' if expand else 'linear'}.png"))
    assert page.errors == []


@pytest.mark.parametrize("expand", [False, True], ids=["linear", "expand"])
def test_the_view_follows_the_current_node_and_its_inputs(page, tmp_path, expand):
    # The sample a learner tries first: MLP 2-4-4-1 and its output, at 1,000 px wide.
    def make():
        model = MLP(2, [4, 4, 1], seed=0, expand=expand)
        return model([0.5, -1.0])

    stepper = BackwardStepper(make())
    # Names, and the derivatives' terms that end in one (not to break after the `/` either).
    names = sorted({stepper.name(v) for v in topological_order(stepper.root)})
    names += [f"{d}{n}" for n in names for d in ("/d", "/∂")]
    root_id = f"v{len(topological_order(stepper.root)) - 1}"
    root = open_page(page, tmp_path, make, f"follow-{expand}")
    total = int(read(root)["counter"].split()[-1])
    label = "expand" if expand else "linear"
    fitted = wrapped = 0
    for k in range(total + 1):
        if k:
            root.press("ArrowRight")
        counter = f"step {k} of {total}"
        assert read(root, shapes=False)["counter"] == counter
        focus = check_focus(root, root_id, counter)
        fitted += bool(focus.get("fits"))
        lines = root.evaluate(READ_BROKEN_NAMES, names)
        assert lines["broken"] == [], f"{counter}: a line breaks inside {lines['broken']}"
        wrapped += lines["wrapped"]
        if k in (0, total // 2, total - 2):
            root.screenshot(path=str(ARTIFACTS / f"stepper-follow-{label}-{k}.png"))
    # The checks above could fail: most steps' inputs fit (and were checked), and some
    # explanation lines are long enough to wrap at this width.
    assert fitted > total // 2
    assert wrapped > 0
    assert page.errors == []


def test_page_of_a_sample_through_the_default_mlp_2_16_16_1(page, tmp_path):
    make = lambda: mlp_sample(False, (16, 16, 1))  # noqa: E731
    root = open_page(page, tmp_path, make, "mlp-16")
    total = int(read(root)["counter"].split()[-1])
    assert total > 400
    # The pass jumps across a 40,000 px tall picture between the layers. Reading the page
    # forces a layout of all of it (about 60 ms), so every third step is checked, node
    # positions every 30th; the steps between are taken all the same.
    first = previous = read(root)
    for k in range(1, total + 1):
        root.evaluate("r => r.querySelector('[aria-label=\"Next step\"]').click()")
        if k % 3 == 0 or k == total:
            state = read(root, shapes=k % 30 == 0)
            check_step(state, first, previous)
            previous = state
    assert final_grads(root) == expected_grads(make)
    assert page.errors == []


def test_page_zooms_with_the_wheel_and_the_buttons_and_pans_by_drag(page, tmp_path):
    root = open_page(page, tmp_path, lambda: mlp_sample(False), "zoom")
    canvas = root.locator(".crs-canvas")

    def transform():
        return canvas.evaluate("c => new DOMMatrix(getComputedStyle(c).transform)")

    viewport = root.locator(".crs-viewport").bounding_box()
    cx, cy = viewport["x"] + viewport["width"] / 2, viewport["y"] + viewport["height"] / 2
    before = transform()
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -300)  # zoom in about the pointer
    zoomed = transform()
    assert zoomed["a"] > before["a"] * 1.5
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 40, steps=4)
    page.mouse.up()
    dragged = transform()
    assert (dragged["e"] - zoomed["e"], dragged["f"] - zoomed["f"]) == (120, 40)
    root.get_by_role("button", name="Zoom out").click()
    assert transform()["a"] == pytest.approx(dragged["a"] * 0.8, rel=1e-4)  # CSS rounds
    root.get_by_role("button", name="Fit").click()
    fitted = transform()
    svg_width = root.locator(".crs-canvas svg").evaluate("s => s.width.baseVal.value")
    assert fitted["a"] * svg_width == pytest.approx(viewport["width"] - 2, abs=2)  # the width
    # The next step brings the current node back into a readable view.
    page.get_by_role("button", name="Next step").click()
    state = read(root)
    check_step(state, state, {"explanation": ""})
    assert page.errors == []


def test_page_zooms_with_a_pinch(browser, tmp_path):
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 900}, has_touch=True, reduced_motion="reduce"
    )
    try:
        pg = context.new_page()
        path = tmp_path / "pinch.html"
        BackwardStepper(mlp_sample(False)).save_html(path)
        pg.goto(path.as_uri())
        root = pg.locator(".chainrule-stepper")
        root.wait_for()
        box = root.locator(".crs-viewport").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        def scale():
            return pg.evaluate(
                "() => new DOMMatrix(getComputedStyle(document.querySelector('.crs-canvas'))"
                ".transform).a"
            )

        before = scale()
        cdp = context.new_cdp_session(pg)

        def touch(kind, points):
            points = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", [(cx - 50, cy), (cx + 50, cy)])
        for d in range(60, 160, 20):  # two fingers move apart: 120 px to 300 px
            touch("touchMove", [(cx - d, cy), (cx + d, cy)])
        touch("touchEnd", [])
        # Zoomed by the ratio of the fingers' distances, measured from the first move
        # (each finger's move is an event of its own, so that is 110-120 px, not 100).
        assert 300 / 120 <= scale() / before <= 300 / 110
    finally:
        context.close()


def test_page_play_pause_and_the_neighbourhood_view(page, tmp_path):
    root = open_page(page, tmp_path, readme_example, "play")
    root.click(position={"x": 5, "y": 5})  # a click gives the stepper focus
    root.press("Space")  # play
    page.get_by_role("button", name="Pause").wait_for()
    page.wait_for_function(
        "() => document.querySelector('.crs-counter').textContent.startsWith('step 6')",
        timeout=15_000,
    )
    assert page.get_by_role("button", name="Play").is_disabled()  # at the end
    page.get_by_role("button", name="Neighbourhood view").click()
    root.press("Home")
    root.press("ArrowRight")
    hood = root.locator(".crs-hood")
    assert hood.is_visible() and "current" in hood.inner_text().lower()
    assert hood.locator(".crs-box.current").count() == 1
    assert page.errors == []


def test_page_of_a_graph_too_big_to_draw_whole_shows_neighbourhoods(page, tmp_path, monkeypatch):
    import autograd.stepper

    monkeypatch.setattr(autograd.stepper, "PICTURE_LIMIT", 10)
    root = open_page(page, tmp_path, lambda: mlp_sample(False), "hood-only")
    note = root.locator(".crs-note")
    assert note.is_visible() and "more than the 10 drawn whole" in note.inner_text()
    hood = root.locator(".crs-hood")
    assert hood.is_visible() and not root.locator(".crs-viewport").is_visible()
    assert not root.get_by_role("button", name="Neighbourhood view").is_visible()
    for _ in range(3):
        before = root.locator(".crs-explain").inner_text()
        root.press("ArrowRight")
        assert root.locator(".crs-explain").inner_text() != before
        assert hood.locator(".crs-box.current").count() == 1
    assert page.errors == []


# -- JupyterLab ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, browser):
    """A JupyterLab server on a free port, serving a copy of notebook 01 (and the same
    notebook executed and saved, as a viewer without its kernel would get it)."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("anywidget")
    import nbclient
    import nbformat

    tmp_path = tmp_path_factory.mktemp("jupyterlab")
    shutil.copy(ROOT / "notebooks" / "01_backprop_by_hand.ipynb", tmp_path)
    saved = nbformat.read(ROOT / "notebooks" / "01_backprop_by_hand.ipynb", as_version=4)
    nbclient.NotebookClient(saved, timeout=120, kernel_name="python3").execute()
    nbformat.write(saved, tmp_path / "01_saved.ipynb")
    # Settings and workspaces of this server only (nothing kept from an earlier run): every
    # cell rendered (no windowing), no news.
    state = tmp_path_factory.mktemp("jupyterlab-state")
    settings = state / "settings"
    for name, value in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        # Jupyter's configuration and runtime files in this test's folders, not the home.
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
    }
    log = open(tmp_path / "jupyterlab.log", "wb")  # closed in the finally below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    tail = (tmp_path / "jupyterlab.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"JupyterLab did not start:\n{tail}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


def test_notebook_01_in_jupyterlab(page, jupyterlab):
    page.set_default_timeout(60_000)
    page.set_viewport_size({"width": 1366, "height": 900})  # where the issue was seen
    page.goto(f"{jupyterlab}/lab/tree/01_backprop_by_hand.ipynb?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    page.locator(".jp-Notebook:visible").first.wait_for()
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    # Wait for the kernel, then run every cell.
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   return w && w.sessionContext && w.sessionContext.session &&
                          w.sessionContext.session.kernel &&
                          w.sessionContext.session.kernel.status === 'idle'; }"""
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    root = page.locator(".jp-Notebook:visible .chainrule-stepper")
    root.wait_for()
    root.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    # The static picture for viewers without widgets is in the output, hidden while the
    # widget runs.
    fallback = page.locator(".chainrule-stepper-fallback[data-stepper]")
    assert fallback.count() == 1 and not fallback.is_visible()
    root.click(position={"x": 5, "y": 5})
    _, last = step_through(page, root, 2, ["ArrowRight", "ArrowRight", "ArrowLeft"], page.errors)
    assert "step 3 of 7" in last["counter"]
    page.screenshot(path=str(ARTIFACTS / "stepper-jupyterlab.png"))
    # The Python stepper followed the widget: ask the kernel.
    assert _kernel_says(page, "print(stepper.position)") == "3"
    # And the widget follows the Python stepper.
    _kernel_says(page, "stepper.step(); print(stepper.position)")
    page.wait_for_function(
        "() => document.querySelector('.crs-counter').textContent === 'step 4 of 7'"
    )
    # The static picture saved with the notebook (hidden while the widget runs) followed.
    page.wait_for_function(
        """() => document.querySelector('.chainrule-stepper-fallback[data-stepper]')
                   .textContent.includes('step 4 of 7')"""
    )
    assert page.errors == []


def test_a_saved_notebook_without_its_kernel_shows_the_static_picture(page, jupyterlab):
    page.set_default_timeout(60_000)
    page.goto(f"{jupyterlab}/lab/tree/01_saved.ipynb?reset")
    page.locator(".jp-Notebook:visible").first.wait_for()
    # The notebook is not trusted here (no kernel ran it in this browser), so JupyterLab
    # sanitises its HTML: the picture is an image, which survives that.
    output = page.locator(".jp-Notebook:visible .jp-Cell").last.locator(".jp-OutputArea")
    picture = output.locator('img[src^="data:image/svg+xml"]')
    picture.scroll_into_view_if_needed()
    assert picture.count() == 1 and picture.is_visible()
    assert picture.evaluate("img => img.naturalWidth") > 200  # the SVG decoded and drew
    assert "step 0 of 7: nothing done yet" in output.inner_text()
    page.screenshot(path=str(ARTIFACTS / "stepper-saved-notebook.png"))


def _kernel_says(page, code: str) -> str:
    """Run `code` in the notebook's kernel; its printed output."""
    result = page.evaluate(
        """async (code) => {
             const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
             let out = '';
             const future = kernel.requestExecute({ code });
             future.onIOPub = (msg) => {
               if (msg.header.msg_type === 'stream') out += msg.content.text;
             };
             await future.done;
             return out;
           }""",
        code,
    )
    return result.strip()


def test_the_readme_screenshot_is_committed():
    # docs/images/stepper.png is this test module's README screenshot (stepper-readme.png).
    picture = ROOT / "docs" / "images" / "stepper.png"
    assert picture.read_bytes().startswith(b"\x89PNG")
