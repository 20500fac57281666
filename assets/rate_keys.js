() => {
  // Keyboard shortcuts of the Rate tab (Gradio has no key bindings of its own; studio/app.py runs this once).
  // Digits pick a level of the highlighted criterion and move the highlight to the next one; Up/Down move
  // the highlight; Right saves and goes on; Left goes back. Keys typed into a text field are left alone.
  const SLOTS = [1, 2, 3, 4].map((n) => `rate-criterion-${n}`);
  let active = 0;
  let shownItem = null;

  const visible = (element) => element && element.offsetParent !== null;
  const groups = () => SLOTS.map((id) => document.getElementById(id)).filter(visible);
  const chosen = (group) => group.querySelector("input[type=radio]:checked") !== null;

  function highlight() {
    const all = groups();
    active = Math.max(0, Math.min(active, all.length - 1));
    SLOTS.forEach((id) => {
      const group = document.getElementById(id);
      const wanted = group !== null && group === all[active];
      if (group && group.classList.contains("rate-active") !== wanted) group.classList.toggle("rate-active", wanted);
    });
  }

  function onNewItem() {
    // A new item (the heading names it): start at its first criterion without a level, else the first.
    const item = document.getElementById("rate-status")?.textContent ?? null;
    if (item !== shownItem) {
      shownItem = item;
      const all = groups();
      const open = all.findIndex((group) => !chosen(group));
      active = open === -1 ? 0 : open;
    }
    highlight();
  }

  function typing(target) {
    return target.closest("textarea, select, [contenteditable=true]") ||
      (target.tagName === "INPUT" && !["radio", "checkbox", "button"].includes(target.type));
  }

  document.addEventListener("keydown", (event) => {
    if (!visible(document.getElementById("rate-panel")) || typing(event.target)) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    onNewItem();
    const all = groups();
    if (/^[1-9]$/.test(event.key) && all.length) {
      const option = all[active].querySelectorAll("input[type=radio]")[Number(event.key) - 1];
      if (!option) return;
      const picked = active;
      option.click();   // fires "change" (below) unless it was chosen already
      active = Math.min(picked + 1, all.length - 1);
    } else if (event.key === "ArrowDown") {
      active += 1;
    } else if (event.key === "ArrowUp") {
      active -= 1;
    } else if (event.key === "ArrowRight") {
      document.getElementById("rate-next")?.click();
    } else if (event.key === "ArrowLeft") {
      document.getElementById("rate-prev")?.click();
    } else {
      return;
    }
    event.preventDefault();
    highlight();
  });

  // Clicking a level with the mouse moves the highlight on as a key would.
  document.addEventListener("change", (event) => {
    const group = event.target.closest?.(".rate-criterion");
    if (!group) return;
    const all = groups();
    active = Math.min(all.indexOf(group) + 1, all.length - 1);
    highlight();
  });

  // Re-rendered content (a new item, the tab opened) sets the highlight again; class changes are not
  // observed, so highlighting cannot trigger itself.
  new MutationObserver(() => visible(document.getElementById("rate-panel")) && onNewItem())
    .observe(document.body, { subtree: true, childList: true, characterData: true });
}
