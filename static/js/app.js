// Small behaviours every page shares, without inline handlers (the Content Security Policy
// allows no inline script): the language select submits its form; [data-select-on-click]
// selects its text on a click, so a one-time token is easy to copy.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});
document.addEventListener("click", (event) => {
  const field = event.target.closest("[data-select-on-click]");
  if (field && typeof field.select === "function") field.select();
});
