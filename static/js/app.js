// Rephlo Admin: small progressive enhancements; every form also works without JavaScript.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const target = document.getElementById(button.dataset.copy);
  if (target && navigator.clipboard) navigator.clipboard.writeText(target.textContent.trim());
  button.textContent = "Copied";
});
document.addEventListener("submit", (event) => {
  // the button that submitted may carry its own question (one form, several actions)
  const message = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
// "/" jumps to the global search from anywhere but a field being typed in.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  const box = document.getElementById("global-search");
  if (typing || !box) return;
  event.preventDefault();
  box.focus();
});
// A confirmed sudo finishes the action that asked for it (auth/resume.py); without JavaScript, one click.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.requestSubmit ? form.requestSubmit() : form.submit();
});
