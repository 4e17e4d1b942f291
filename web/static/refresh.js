// Reloads pages that show open incidents every data-refresh seconds,
// unless someone is typing in a form.
(function () {
  var s = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (!s) { return; }
  setInterval(function () {
    var a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT")) { return; }
    window.location.reload();
  }, s * 1000);
})();
