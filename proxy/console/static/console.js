// Tollgate console: the few things pages do better with a script. Every
// flow works without it.
document.addEventListener("click", (e) => {
  const b = e.target.closest("button.copy");
  if (!b) return;
  const text = document.getElementById(b.dataset.copy).textContent;
  navigator.clipboard.writeText(text).then(() => { b.textContent = "Copied"; });
});
