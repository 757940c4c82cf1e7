// The agent desktop's only script: ask for a reason before a reveal, and take a
// revealed value off the screen after a while. Nothing is fetched from elsewhere.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const reveal = document.getElementById("reveal");
  if (reveal) {
    reveal.addEventListener("submit", (event) => {
      const reason = window.prompt("Why do you need to see this field? (recorded)");
      if (!reason || reason.trim().length < 3) {
        event.preventDefault();
        return;
      }
      reveal.elements.namedItem("reason").value = reason.trim();
    });
  }
  for (const shown of document.querySelectorAll("output[data-hide-after]")) {
    const seconds = Number(shown.dataset.hideAfter) || 30;
    window.setTimeout(() => { shown.textContent = "(hidden)"; }, seconds * 1000);
  }
});
