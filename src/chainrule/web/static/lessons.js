// chainrule playground: the lessons side panel. The server performs each lesson with the
// same player as `chainrule lesson` and renders each block with the handout's renderer;
// this file only lays the blocks out and sends the learner's answers to be checked
// (docs/web.md, "Lessons"). A checkpoint's answer never comes to the page before the
// learner answers. It calls the server and builds elements with app.js's `api` and `el`
// (app.js is loaded first).
"use strict";

(() => {
  const byId = (id) => document.getElementById(id);
  const panel = byId("lessons-panel");
  const toggle = byId("lessons-toggle");
  const list = byId("lessons-list");
  const article = byId("lesson");
  const status = byId("lessons-status");
  const back = byId("lessons-back");
  let loaded = false;

  function say(text) { status.textContent = text || ""; }

  function show(open) {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("lessons-open", open);
    if (open && !loaded) showList().catch((error) => say(error.message));
    if (open) byId("lessons-h").focus();
    else toggle.focus();
  }

  async function showList() {
    say("Loading the lessons...");
    const { lessons } = await api("GET", "/api/lessons");
    list.replaceChildren(...lessons.map((lesson) => el("li", {},
      el("button", { type: "button", class: "lesson-link", onclick: () => openLesson(lesson.name) },
        lesson.title),
      el("p", { class: "lesson-summary", text: lesson.summary }))));
    loaded = true;
    say("");
    list.hidden = false;
    article.hidden = true;
    back.hidden = true;
  }

  async function openLesson(name) {
    say("Playing the lesson: running its commands and drawing its figures...");
    let lesson;
    try {
      lesson = await api("GET", `/api/lessons/${encodeURIComponent(name)}`);
    } catch (error) {
      say(error.message);
      return;
    }
    const opened = new Set();
    const blocks = lesson.blocks.map((block) => {
      const box = el("div", { class: `lesson-block ${block.kind}`, "data-block": block.number });
      box.innerHTML = block.html;  // rendered on the server from the lesson's Markdown, escaped
      if (block.kind === "checkpoint") box.append(checkpoint(lesson.name, block));
      if (block.scenario && !opened.has(block.scenario)) {
        opened.add(block.scenario);
        box.append(el("button", {
          type: "button", class: "open-scenario",
          onclick: () => openScenario(block.scenario),
        }, `Open ${block.scenario} in the playground`));
      }
      return box;
    });
    article.replaceChildren(
      el("p", { class: "lesson-place", text: `Lesson ${lesson.position}: ${lesson.checkpoints} checkpoints` }),
      ...blocks);
    list.hidden = true;
    article.hidden = false;
    back.hidden = false;
    panel.scrollTop = 0;
    say("");
  }

  function checkpoint(name, block) {
    const label = `answer to exercise ${block.checkpoint}`;
    const input = el("input", { type: "text", inputmode: "decimal", autocomplete: "off", "aria-label": label });
    const feedback = el("p", { class: "feedback", "aria-live": "polite" });
    const send = async (answer) => {
      try {
        const result = await api("POST",
          `/api/lessons/${encodeURIComponent(name)}/checkpoints/${block.checkpoint}`, { answer });
        feedback.textContent = result.message;
        feedback.className = `feedback ${result.correct ? "ok" : "no"}`;
      } catch (error) {
        feedback.textContent = error.message;
        feedback.className = "feedback no";
      }
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") send(input.value); });
    return el("div", { class: "answer" }, input,
      el("button", { type: "button", onclick: () => send(input.value) }, "Check"),
      el("button", { type: "button", class: "reveal", onclick: () => send("") }, "Show the answer"),
      feedback);
  }

  function openScenario(name) {  // the playground's own scenario picker opens it
    const select = byId("scenario-select");
    if (![...select.options].some((o) => o.value === name)) return;
    select.value = name;
    select.dispatchEvent(new Event("change"));
    if (window.matchMedia("(max-width: 900px)").matches) show(false);  // the panel covers it
  }

  toggle.addEventListener("click", () => show(panel.hidden));
  byId("lessons-close").addEventListener("click", () => show(false));
  back.addEventListener("click", () => showList().catch((error) => say(error.message)));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !panel.hidden) show(false); });
  byId("lessons-h").setAttribute("tabindex", "-1");
  if (new URLSearchParams(location.search).has("lesson")) {
    show(true);
    openLesson(new URLSearchParams(location.search).get("lesson"));
  }
})();
