// Small behaviours every page shares, without inline handlers (the Content Security Policy
// allows no inline script): the language select submits its form; [data-select-on-click]
// selects its text on a click, so a one-time token is easy to copy; a select with
// [data-hides-choice="name"] hides (and unticks) the box of the same value among the
// checkboxes called `name` (a campaign's own number is not offered again to split with).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
  const chooser = event.target.closest("select[data-hides-choice]");
  if (chooser) hideChosen(chooser);
});
document.addEventListener("click", (event) => {
  const field = event.target.closest("[data-select-on-click]");
  if (field && typeof field.select === "function") field.select();
});
function hideChosen(select) {
  const boxes = select.form.querySelectorAll(`input[name="${select.dataset.hidesChoice}"]`);
  for (const box of boxes) {
    const chosen = box.value === select.value;
    if (chosen) box.checked = false;
    box.closest("label").hidden = chosen;
  }
}
document.querySelectorAll("select[data-hides-choice]").forEach(hideChosen);
