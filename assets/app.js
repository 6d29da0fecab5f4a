// LUX dashboards: a little progressive enhancement; every page works without it.
// The company switcher submits on change; the custom dates show only for a custom range.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
document.querySelectorAll("select[data-range]").forEach(function (select) {
  var form = select.form;
  function sync() {
    var custom = select.value === "custom";
    form.querySelectorAll(".custom").forEach(function (label) {
      label.hidden = !custom;
      label.querySelector("input").disabled = !custom;
    });
  }
  select.addEventListener("change", sync);
  sync();
});
