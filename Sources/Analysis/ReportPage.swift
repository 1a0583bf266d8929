import Foundation

/// `report`'s HTML page: one file with its styles, script and data inline,
/// so that the installed binary needs no resource files and the page opens
/// offline. The Content-Security-Policy forbids every fetch (scripts,
/// styles, fonts, images other than data:, connections), so the page cannot
/// reference anything outside itself even by accident.
///
/// The page applies a URL fragment as if a user had chosen those filters
/// (README, "report"): `#pred=positive&outcome=wrong&q=film&view=words`;
/// keys `pred`, `gold` (a class name, or `none`), `outcome` (`correct`,
/// `wrong`), `cmin`, `cmax` (confidence bounds), `group` (a sample group's
/// name), `q` (search), `view` (`tokens`, `words`), `shown` (records shown),
/// `words` (the method of the words table).
public enum ReportPage {
    /// The page for `data` (ReportData.build) and the evaluation document's text (nil: none).
    public static func html(data: JSONValue, evaluation: String?) -> String {
        template
            .replacingOccurrences(of: "@@DATA@@", with: scriptSafe(data.compactText()))
            .replacingOccurrences(of: "@@EVALUATION@@", with: scriptSafe(evaluation ?? "null"))
    }

    /// JSON that cannot end its `<script>` element early: every `<` (only
    /// ever inside a JSON string) written as the escape `\u003c`.
    static func scriptSafe(_ json: String) -> String {
        json.replacingOccurrences(of: "<", with: "\\u003c")
    }

    static let template = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>bertlrp-batch report</title>
<style>
:root {
  --ink: #1b1b1b; --muted: #595959; --rule: #d6d6d6; --soft: #f3f3f1; --paper: #fff; --accent: #1c4f8f;
  --wrong: #8c2d04; --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
  --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
  --lab: 64px;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--paper); color: var(--ink); font: 15px/1.5 var(--sans); }
.wrap { max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; }
header.top { padding: 20px 0 4px; }
h1 { font-size: 1.55rem; line-height: 1.25; margin: 0 0 4px; font-weight: 650; letter-spacing: -0.01em; }
h1 code { font-size: 0.9em; }
h2 { font-size: 1.2rem; margin: 36px 0 8px; padding-top: 8px; border-top: 1px solid var(--rule); font-weight: 650; }
h3 { font-size: 1rem; margin: 20px 0 6px; font-weight: 650; }
p { margin: 6px 0; max-width: 78ch; }
.sub, .note { color: var(--muted); }
.note { font-size: 0.9rem; }
code, .mono { font-family: var(--mono); font-size: 0.88em; }
nav.toc { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 0.92rem; margin: 6px 0 0; }
nav.toc a { color: var(--accent); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, select:focus-visible, input:focus-visible { outline: 3px solid #e8a33d; outline-offset: 1px; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; overflow-wrap: anywhere; }
.tag { display: inline-block; font-size: 0.78rem; padding: 0 6px; border: 1px solid var(--rule); border-radius: 9px; margin: 0 4px 2px 0; white-space: nowrap; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid var(--rule); vertical-align: middle; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; border-bottom: 2px solid var(--ink); white-space: nowrap; }
tbody tr.random td { color: var(--muted); font-style: italic; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 0.88rem; padding-top: 6px; }
table.aopc td { white-space: nowrap; }
table.aopc td.iv { padding: 0 4px; }
table.aopc td.iv svg { display: block; }
.cm td.n { min-width: 64px; text-align: center; font-weight: 600; }
.grid2 { display: flex; flex-wrap: wrap; gap: 16px 40px; align-items: flex-start; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px 14px; margin: 8px 0 4px; }
.chart { border: 1px solid var(--rule); border-radius: 6px; padding: 4px 4px 0; break-inside: avoid; }
.chart svg { display: block; width: 100%; height: auto; }
svg text { font: 11px var(--sans); fill: var(--muted); }
svg .t { font-weight: 650; fill: var(--ink); font-size: 12px; }
svg .ax { stroke: #9a9a9a; stroke-width: 1; }
svg .gr { stroke: #ececec; stroke-width: 1; }
svg .ln { fill: none; stroke-width: 2; }
svg .m { stroke: #1c4f8f; }
svg .r { stroke: #8a8a8a; stroke-dasharray: 5 3; stroke-width: 1.6; }
svg .pm { fill: #1c4f8f; }
svg .pr { fill: #fff; stroke: #8a8a8a; stroke-width: 1.4; }
svg .band { fill: #dcdcdc; }
svg .ci { stroke: var(--ink); stroke-width: 2; }
svg .dot { fill: var(--ink); }
.key { display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: center; font-size: 0.88rem; color: var(--muted); }
.key svg { vertical-align: middle; }
.better { color: #1c4f8f; font-weight: 600; }
.worse { color: var(--wrong); font-weight: 600; }
.words-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px 22px; margin-top: 8px; }
.wcard { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 12px; break-inside: avoid; }
.wcard h3 { margin: 2px 0 6px; }
.wlists { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.wlists h4 { margin: 0 0 2px; font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-weight: 600; }
ol.wl { list-style: none; margin: 0; padding: 0; font-size: 0.88rem; }
ol.wl li { display: grid; grid-template-columns: minmax(0, 1fr) auto; column-gap: 6px; padding: 1px 0; }
ol.wl .w { font-family: var(--mono); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
ol.wl .v { color: var(--muted); font-variant-numeric: tabular-nums; }
ol.wl .bar { grid-column: 1 / 3; height: 3px; background: #cfcfcf; }
ol.wl .bar span { display: block; height: 3px; background: #4d4d4d; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: flex-end; padding: 12px 14px; background: var(--soft); border: 1px solid var(--rule); border-radius: 6px; margin: 10px 0; }
form.filters label, form.filters fieldset { display: flex; flex-direction: column; font-size: 0.8rem; color: var(--muted); gap: 2px; }
form.filters fieldset { border: 0; padding: 0; margin: 0; }
form.filters fieldset legend { padding: 0; margin-bottom: 2px; }
form.filters fieldset span { display: flex; gap: 10px; color: var(--ink); font-size: 0.92rem; }
form.filters fieldset span label { flex-direction: row; align-items: center; gap: 4px; color: var(--ink); font-size: 0.92rem; }
select, input, button { font: inherit; font-size: 0.92rem; color: var(--ink); }
select, input[type=number], input[type=search] { padding: 4px 6px; border: 1px solid #8f8f8f; border-radius: 4px; background: #fff; min-height: 32px; }
input[type=number] { width: 5.5em; }
input[type=search] { width: 14em; }
button { padding: 5px 12px; border: 1px solid #6f6f6f; border-radius: 4px; background: #fff; cursor: pointer; min-height: 32px; }
button:hover { background: #eef2f8; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 36px; margin: 6px 0 4px; font-size: 0.85rem; color: var(--muted); }
.legend .scale { display: grid; grid-template-columns: auto 180px auto; align-items: center; gap: 2px 8px; }
.legend .scale b { grid-column: 1 / 4; color: var(--ink); font-weight: 600; }
.legend .ramp { height: 14px; border: 1px solid #9a9a9a; }
.legend .sw { display: inline-block; width: 22px; height: 14px; border: 1px solid #9a9a9a; vertical-align: middle; margin-right: 4px; }
#status { margin: 8px 0; font-weight: 600; }
.rec { border-top: 1px solid var(--rule); padding: 12px 0 10px; break-inside: avoid; }
.rh { display: flex; flex-wrap: wrap; gap: 2px 14px; align-items: baseline; font-size: 0.9rem; }
.rh .ri { font-weight: 650; font-variant-numeric: tabular-nums; }
.badge { font-size: 0.75rem; font-weight: 650; padding: 0 7px; border-radius: 9px; border: 1.5px solid; white-space: nowrap; }
.badge.wrong { color: var(--wrong); border-color: var(--wrong); }
.badge.right { color: #245a2c; border-color: #245a2c; }
.badge.grp { color: var(--muted); border-color: var(--rule); font-weight: 500; }
.txt { margin: 4px 0 8px; max-width: none; }
.txt .segb { color: var(--muted); }
.line { display: flex; align-items: flex-start; margin: 0 0 8px; }
.lab { flex: 0 0 var(--lab); width: var(--lab); font-size: 11px; color: var(--muted); text-align: right; padding-right: 6px; }
.lab span { display: block; height: 15px; line-height: 15px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.lab .lt { height: 22px; line-height: 22px; color: var(--ink); font-weight: 600; }
.cols { display: flex; flex-wrap: wrap; row-gap: 6px; min-width: 0; }
.tk { display: block; flex: 0 0 auto; margin-right: 2px; }
.tt { display: block; height: 22px; line-height: 22px; font: 13px/22px var(--mono); text-align: center; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding: 0 3px; }
.tk.sp .tt { color: #8a8a8a; font-size: 11px; }
.c { display: block; height: 14px; margin-top: 1px; }
.c.n { background-image: repeating-linear-gradient(135deg, rgba(255,255,255,.55) 0 1.5px, transparent 1.5px 4.5px); }
.c.x { background: repeating-linear-gradient(45deg, #ededed 0 2px, #fafafa 2px 5px); }
.c.z { background: #fff; outline: 1px dotted #c9c9c9; outline-offset: -1px; }
.more { margin: 10px 0; }
#script-errors { color: #8c0000; white-space: pre-wrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  .wrap { padding: 0 12px 32px; }
  :root { --lab: 50px; }
  h1 { font-size: 1.25rem; }
  dl.summary { grid-template-columns: 1fr; gap: 0; }
  dl.summary dd { margin-bottom: 6px; }
  form.filters { gap: 8px 10px; padding: 10px; }
  form.filters label { flex: 1 1 40%; }
  form.filters select, form.filters input { width: 100%; }
  .words-cards { grid-template-columns: 1fr; }
  .charts { grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
  th, td { padding: 4px 6px; }
  .legend .scale { grid-template-columns: auto 120px auto; }
}
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { font-size: 10pt; }
  .wrap { max-width: none; padding: 0; }
  form.filters, .more, nav.toc, #w-pick { display: none; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
</style>
</head>
<body data-ready="0" data-errors="0">
<div class="wrap">
<header class="top">
  <h1 id="title">Explanations of a run</h1>
  <p class="sub" id="subtitle"></p>
  <nav class="toc" aria-label="Sections"><a href="#s-summary">Summary</a><a href="#s-classification">Classification</a><a href="#s-faithfulness">Faithfulness</a><a href="#s-words">Top words</a><a href="#s-records">Records</a></nav>
</header>
<pre id="script-errors" hidden></pre>
<main>
<section id="s-summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2><dl class="summary" id="summary"></dl></section>
<section id="s-classification" aria-labelledby="h-classification"><h2 id="h-classification">Classification</h2><div id="classification"></div></section>
<section id="s-faithfulness" aria-labelledby="h-faithfulness"><h2 id="h-faithfulness">Faithfulness: which explanation can be trusted</h2><div id="faithfulness"></div></section>
<section id="s-words" aria-labelledby="h-words"><h2 id="h-words">Top and bottom words</h2><div id="words"></div></section>
<section id="s-records" aria-labelledby="h-records"><h2 id="h-records">Records</h2>
<p class="note" id="sampling"></p>
<form class="filters" id="filters" role="search" aria-label="Filter the records">
  <label>Predicted class<select id="f-pred"></select></label>
  <label>Gold label<select id="f-gold"></select></label>
  <label>Outcome<select id="f-outcome"><option value="">any</option><option value="correct">correct</option><option value="wrong">misclassified</option></select></label>
  <label>Min. confidence<input type="number" id="f-cmin" min="0" max="1" step="0.05" value="0" inputmode="decimal"></label>
  <label>Max. confidence<input type="number" id="f-cmax" min="0" max="1" step="0.05" value="1" inputmode="decimal"></label>
  <label>Sample group<select id="f-group"></select></label>
  <label>Search text<input type="search" id="f-q" placeholder="a word or phrase" autocomplete="off"></label>
  <fieldset><legend>Heatmap of</legend><span><label><input type="radio" name="view" value="tokens" checked>tokens</label><label><input type="radio" name="view" value="words">words</label></span></fieldset>
  <button type="button" id="f-reset">Reset filters</button>
</form>
<div class="legend" id="legend"></div>
<p id="status" role="status" aria-live="polite"></p>
<div id="list"></div>
<div class="more"><button type="button" id="more" hidden>Show more</button></div>
</section>
</main>
</div>
<script type="application/json" id="report-data">@@DATA@@</script>
<script type="application/json" id="report-evaluation">@@EVALUATION@@</script>
<script>
"use strict";
(function () {
  var started = performance.now(), failures = 0;
  function recordError(message) {
    failures += 1;
    var box = document.getElementById("script-errors");
    box.hidden = false;
    box.textContent += "script error: " + message + "\n";
    document.body.setAttribute("data-errors", String(failures));
  }
  window.onerror = function (message, source, line, column) { recordError(message + " (line " + line + ":" + column + ")"); };
  window.addEventListener("unhandledrejection", function (e) { recordError(String(e.reason)); });
  try { main(); } catch (e) { recordError((e && e.stack) || String(e)); }

function main() {
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var E = JSON.parse(document.getElementById("report-evaluation").textContent);
  var S = D.summary, labels = D.labels, methods = S.methods, signed = new Set(D.signed);
  var PAGE = 50;
  function $(id) { return document.getElementById(id); }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; }); }
  function fix(x, d) { return x == null || !isFinite(x) ? "–" : Number(x).toFixed(d == null ? 3 : d); }
  function raw(x) { return x == null ? "n/a" : Number(x).toPrecision(4); }
  function cls(c) { return c == null ? "–" : (labels[c] != null ? labels[c] : "class " + c); }

  // Colour scales. Diverging (signed methods): ColorBrewer RdBu, blue =
  // against the target, red = for it, centred at 0; negative cells are also
  // hatched so that the sign survives greyscale. Sequential (unsigned):
  // viridis from light to dark, lightness falling monotonically.
  var DIV = [[33, 102, 172], [67, 147, 195], [146, 197, 222], [247, 247, 247], [244, 165, 130], [214, 96, 77], [178, 24, 43]];
  var SEQ = [[0, [247, 247, 247]], [0.2, [253, 231, 37]], [0.4, [122, 209, 81]], [0.6, [34, 168, 132]], [0.8, [42, 120, 142]], [0.9, [65, 68, 135]], [1, [68, 1, 84]]];
  function mix(a, b, t) { return [0, 1, 2].map(function (i) { return Math.round(a[i] + (b[i] - a[i]) * t); }); }
  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }
  function divColor(v) {
    v = Math.max(-1, Math.min(1, v));
    var p = (v + 1) / 2 * (DIV.length - 1), i = Math.min(DIV.length - 2, Math.floor(p));
    return mix(DIV[i], DIV[i + 1], p - i);
  }
  function seqColor(t) {
    t = Math.max(0, Math.min(1, t));
    for (var i = 1; i < SEQ.length; i++) if (t <= SEQ[i][0]) return mix(SEQ[i - 1][1], SEQ[i][1], (t - SEQ[i - 1][0]) / (SEQ[i][0] - SEQ[i - 1][0]));
    return SEQ[SEQ.length - 1][1];
  }
  function ramp(f, from, to) {
    var stops = [];
    for (var i = 0; i <= 10; i++) stops.push(rgb(f(from + (to - from) * i / 10)) + " " + (i * 10) + "%");
    return "linear-gradient(to right, " + stops.join(", ") + ")";
  }

  // ---- header and summary
  document.title = "Report: " + S.run + " (bertlrp-batch)";
  $("title").innerHTML = "Explanations of <code>" + esc(S.run) + "</code>";
  $("subtitle").textContent = S.records + " records, " + methods.length + " method" + (methods.length == 1 ? "" : "s") + " (" + methods.join(", ") + "), model " + S.model.replace(/\/+$/, "").split("/").pop();
  var items = [
    ["Run directory", "<span class=mono>" + esc(S.run_path) + "</span>"],
    ["Model", "<span class=mono>" + esc(S.model) + "</span>"],
    ["Model SHA-256", "<span class=mono>" + esc(S.model_sha256) + "</span>"],
    ["Classes", labels.map(function (l, i) { return esc(i + " " + l); }).join(", ")],
    ["Methods", methods.map(function (m) { return "<span class=tag>" + esc(m) + (signed.has(m) ? " · signed" : " · unsigned") + "</span>"; }).join("")],
    ["Explained target", esc(S.targets)],
    ["Records", S.records + (S.errors ? ", <b>" + S.errors + " input error" + (S.errors == 1 ? "" : "s") + "</b> (errors.jsonl)" : ", no input errors")],
    ["Inputs", S.inputs.map(function (x) { return "<span class=mono>" + esc(x) + "</span>"; }).join(", ") || "standard input"],
    ["Max sequence length", String(S.max_seq_length)],
    ["Run made by", esc(S.tool) + ", finished " + esc(S.updated)],
    ["Report made by", esc(S.report_tool) + ", " + esc(S.generated)]
  ];
  $("summary").innerHTML = items.map(function (x) { return "<dt>" + x[0] + "</dt><dd>" + x[1] + "</dd>"; }).join("");

  // ---- classification report and confusion matrix
  var C = D.classification;
  if (!C) {
    $("classification").innerHTML = "<p class=note>The records have no labels: no classification report.</p>";
  } else {
    var names = C.labels, rows = "";
    names.forEach(function (n) { var s = C.per_class[n]; rows += "<tr><th scope=row>" + esc(n) + "</th><td>" + fix(s.precision) + "</td><td>" + fix(s.recall) + "</td><td>" + fix(s.f1) + "</td><td>" + s.support + "</td></tr>"; });
    [["macro avg", C.macro], ["weighted avg", C.weighted]].forEach(function (x) { rows += "<tr><th scope=row>" + x[0] + "</th><td>" + fix(x[1].precision) + "</td><td>" + fix(x[1].recall) + "</td><td>" + fix(x[1].f1) + "</td><td>" + x[1].support + "</td></tr>"; });
    var report = "<div class=scroll><table><caption>Accuracy " + fix(C.accuracy) + " over " + C.macro.support + " labelled records" + (C.unlabeled ? " (" + C.unlabeled + " without a usable label left out)" : "") + "; as sklearn's classification_report.</caption><thead><tr><th scope=col>class</th><th scope=col>precision</th><th scope=col>recall</th><th scope=col>F1</th><th scope=col>support</th></tr></thead><tbody>" + rows + "</tbody></table></div>";
    var most = 1; C.confusion.forEach(function (r) { r.forEach(function (v) { most = Math.max(most, v); }); });
    var cm = "<div class=scroll><table class=cm><caption>Rows: gold label; columns: predicted class; shade: count.</caption><thead><tr><th scope=col>gold \\ predicted</th>" + names.map(function (n) { return "<th scope=col>" + esc(n) + "</th>"; }).join("") + "</tr></thead><tbody>";
    C.confusion.forEach(function (r, i) {
      cm += "<tr><th scope=row>" + esc(names[i]) + "</th>" + r.map(function (v, j) { var t = v / most; return "<td class=n style=\"background:" + rgb(seqColor(t * 0.85)) + ";color:" + (t * 0.85 > 0.62 ? "#fff" : "#1b1b1b") + "\" title=\"gold " + esc(names[i]) + ", predicted " + esc(names[j]) + ": " + v + "\">" + v + "</td>"; }).join("") + "</tr>";
    });
    cm += "</tbody></table></div>";
    $("classification").innerHTML = "<div class=grid2><div><h3>Classification report</h3>" + report + "</div><div><h3>Confusion matrix</h3>" + cm + "</div></div>";
  }

  // ---- faithfulness: AOPC table and curves
  function niceTicks(lo, hi, n) {
    var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / n))), err = span / n / step;
    step *= err >= 7.5 ? 10 : err >= 3 ? 5 : err >= 1.5 ? 2 : 1;
    var out = []; for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function faithfulness() {
    if (!E) {
      $("faithfulness").innerHTML = "<p class=note>No evaluation of this run: run <code>bertlrp-batch evaluate " + esc(S.run_path) + "</code> (it writes evaluation.json into the run, which report then uses), or name one with <code>--evaluation FILE</code>.</p>";
      return;
    }
    var M = E.methods, names = Object.keys(M).filter(function (m) { return m != "random"; }), rnd = M.random;
    names.sort(function (a, b) { return M[b].comprehensiveness.aopc - M[a].comprehensiveness.aopc; });
    var all = names.concat(rnd ? ["random"] : []);
    function range(key) { var lo = 0, hi = 0; all.forEach(function (m) { var c = M[m][key].ci95; lo = Math.min(lo, c[0]); hi = Math.max(hi, c[1]); }); return [lo, hi + (hi - lo) * 0.05 || 1]; }
    var ranges = { comprehensiveness: range("comprehensiveness"), sufficiency: range("sufficiency") };
    function interval(m, key) {
      var W = 130, H = 18, r = ranges[key], x = function (v) { return 4 + (v - r[0]) / (r[1] - r[0]) * (W - 8); };
      var c = M[m][key].ci95, a = M[m][key].aopc, s = "<svg width=" + W + " height=" + H + " viewBox=\"0 0 " + W + " " + H + "\" role=img aria-label=\"" + key + " " + fix(a) + ", interval " + fix(c[0]) + " to " + fix(c[1]) + "\">";
      if (rnd && m != "random") { var rc = rnd[key].ci95; s += "<rect class=band x=" + x(rc[0]).toFixed(1) + " y=2 width=" + Math.max(1, x(rc[1]) - x(rc[0])).toFixed(1) + " height=14><title>random's interval</title></rect>"; }
      s += "<line class=ax x1=" + x(0).toFixed(1) + " x2=" + x(0).toFixed(1) + " y1=0 y2=" + H + "></line>";
      s += "<line class=ci x1=" + x(c[0]).toFixed(1) + " x2=" + x(c[1]).toFixed(1) + " y1=9 y2=9></line><circle class=dot cx=" + x(a).toFixed(1) + " cy=9 r=3.5></circle></svg>";
      return s;
    }
    function versus(m) {
      if (!rnd || m == "random") return "";
      var c = M[m].comprehensiveness.ci95, r = rnd.comprehensiveness.ci95;
      if (c[0] > r[1]) return "<span class=better>above random</span>";
      if (c[1] < r[0]) return "<span class=worse>below random</span>";
      return "not distinguishable";
    }
    var rows = all.map(function (m) {
      var x = M[m];
      return "<tr" + (m == "random" ? " class=random" : "") + "><th scope=row>" + esc(m) + "</th><td>" + x.records + "</td><td>" + fix(x.comprehensiveness.aopc) + " <span class=note>[" + fix(x.comprehensiveness.ci95[0]) + ", " + fix(x.comprehensiveness.ci95[1]) + "]</span></td><td class=iv>" + interval(m, "comprehensiveness") + "</td><td>" + fix(x.sufficiency.aopc) + " <span class=note>[" + fix(x.sufficiency.ci95[0]) + ", " + fix(x.sufficiency.ci95[1]) + "]</span></td><td class=iv>" + interval(m, "sufficiency") + "</td><td>" + fix(x.eraser.comprehensiveness) + " / " + fix(x.eraser.sufficiency) + "</td><td>" + versus(m) + "</td></tr>";
    }).join("");
    var h = "<p>Each method's k highest-ranked tokens are replaced by <code>" + esc(E.replace) + "</code> (k = 1.." + E.k + ", never [CLS]/[SEP]) and the model run again. <b>Comprehensiveness</b>: the mean drop of the predicted class's probability when they are deleted (higher = the method found what the model uses). <b>Sufficiency</b>: the drop when only they are kept (lower is better). <b>random</b> ranks tokens at random: a method is only useful where it beats it.</p>";
    h += "<div class=scroll><table class=aopc><caption>AOPC (area over the perturbation curve: the mean of the curve over k = 1.." + E.k + ") with 95% bootstrap intervals over " + E.records + " records; grey band: random's interval. ERASER: the same at 1, 5, 10, 20, 50% of the tokens. Sorted by comprehensiveness.</caption><thead><tr><th scope=col>method</th><th scope=col>records</th><th scope=col colspan=2>comprehensiveness ↑</th><th scope=col colspan=2>sufficiency ↓</th><th scope=col>ERASER comp. / suff.</th><th scope=col>vs random</th></tr></thead><tbody>" + rows + "</tbody></table></div>";
    var key = "<div class=key><span><svg width=34 height=10><line class=\"ln m\" x1=2 x2=32 y1=5 y2=5></line></svg> the method</span><span><svg width=34 height=10><line class=\"ln r\" x1=2 x2=32 y1=5 y2=5></line></svg> random (baseline)</span></div>";
    function section(title, text, curve) {
      var lo = 0, hi = 0, K = 0;
      all.forEach(function (m) { var c = curve(M[m]); if (!c) return; K = c.length - 1; c.forEach(function (v) { if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
      if (!K) return "";
      var ticks = niceTicks(lo, hi, 4); lo = Math.min(lo, ticks[0]); hi = Math.max(hi, ticks[ticks.length - 1]);
      var out = "<h3>" + title + "</h3><p class=note>" + text + "</p>" + key + "<div class=charts>";
      names.forEach(function (m) {
        var W = 220, H = 150, L = 38, R = 8, T = 20, B = 26;
        var x = function (k) { return L + k / K * (W - L - R); }, y = function (v) { return T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B); };
        var s = "<svg viewBox=\"0 0 " + W + " " + H + "\" role=img aria-label=\"" + esc(title + ", " + m) + "\"><text class=t x=" + L + " y=13>" + esc(m) + "</text>";
        ticks.forEach(function (v) { s += "<line class=gr x1=" + L + " x2=" + (W - R) + " y1=" + y(v).toFixed(1) + " y2=" + y(v).toFixed(1) + "></line><text x=" + (L - 4) + " y=" + (y(v) + 3.5).toFixed(1) + " text-anchor=end>" + (+v.toFixed(3)) + "</text>"; });
        s += "<line class=ax x1=" + L + " x2=" + (W - R) + " y1=" + (H - B) + " y2=" + (H - B) + "></line>";
        niceTicks(0, K, 4).forEach(function (k) { if (k === Math.round(k)) s += "<text x=" + x(k).toFixed(1) + " y=" + (H - B + 13) + " text-anchor=middle>" + k + "</text>"; });
        s += "<text x=" + ((L + W - R) / 2) + " y=" + (H - 2) + " text-anchor=middle>k tokens</text>";
        [["random", "r", "pr"], [m, "m", "pm"]].forEach(function (z) {
          if (!M[z[0]]) return; var c = curve(M[z[0]]); if (!c) return;
          s += "<polyline class=\"ln " + z[1] + "\" points=\"" + c.map(function (v, k) { return x(k).toFixed(1) + "," + y(v).toFixed(1); }).join(" ") + "\"></polyline>";
          c.forEach(function (v, k) { s += "<circle class=" + z[2] + " cx=" + x(k).toFixed(1) + " cy=" + y(v).toFixed(1) + " r=2.4><title>" + esc(z[0]) + ", k = " + k + ": " + fix(v) + "</title></circle>"; });
        });
        out += "<div class=chart>" + s + "</svg></div>";
      });
      return out + "</div>";
    }
    h += section("Deletion curves", "Drop of the predicted class's probability after deleting the top k tokens (higher = more faithful).", function (x) { return x.comprehensiveness.curve; });
    h += section("Keep-only curves", "Drop when only the top k tokens are kept, the rest replaced (lower = more faithful).", function (x) { return x.sufficiency.curve; });
    if (rnd && rnd.accuracy) h += section("Accuracy after deletion", "Accuracy on the labelled records after deleting the top k tokens (the seed's curve; lower = more faithful).", function (x) { return x.accuracy; });
    $("faithfulness").innerHTML = h;
  }
  faithfulness();

  // ---- top and bottom words
  var wsel = "<p>Each record's |scores| divided by their largest (the seed's normalisation; [CLS]/[SEP] left out), then each token's mean over all " + S.records + " records of the run, as <code>bertlrp-batch words</code> ranks them" + (D.words.min_count ? " (tokens seen more than " + D.words.min_count + " times)" : "") + "; by the class the model predicted. The number after a mean: how often the token occurs.</p><label id=w-pick>Method <select id=w-method>" + methods.map(function (m) { return "<option>" + esc(m) + "</option>"; }).join("") + "</select></label><div id=w-cards class=words-cards></div>";
  $("words").innerHTML = wsel;
  function wordList(xs) {
    return "<ol class=wl>" + xs.map(function (e) { return "<li><span class=w title=\"" + esc(e[0]) + "\">" + esc(e[0]) + "</span><span class=v>" + e[1].toFixed(3) + " · " + e[2] + "</span><span class=bar><span style=\"width:" + Math.max(0, Math.min(100, e[1] * 100)).toFixed(1) + "%\"></span></span></li>"; }).join("") + "</ol>";
  }
  function renderWords(m) {
    var cards = D.words.methods[m] || [];
    $("w-cards").innerHTML = cards.map(function (c) {
      return "<div class=wcard><h3>" + (c.class == null ? "All records" : "Predicted " + esc(cls(c.class))) + " <span class=note>(" + c.records + " records, " + c.words + " tokens)</span></h3><div class=wlists><div><h4>Top " + c.top.length + "</h4>" + wordList(c.top) + "</div><div><h4>Bottom " + c.bottom.length + "</h4>" + wordList(c.bottom) + "</div></div></div>";
    }).join("");
  }

  // ---- records: the sample, filters, heatmaps
  var groups = D.sampling.groups;
  $("sampling").innerHTML = "The page holds " + D.records.length + " of the run's " + S.records + " records (<code>--records " + D.sampling.budget + "</code>, seed " + D.sampling.seed + "), in three labelled groups: " + groups.map(function (g) { return "<b>" + esc(g.name) + "</b> (" + g.count + "): " + esc(g.description); }).join("; ") + ". The tables above are over all records.";
  var R = D.records.map(function (r) {
    var conf = r.pr[r.p];
    return { r: r, sp: new Set(r.sp), conf: conf == null ? 0 : conf, correct: r.gold == null ? null : r.gold === r.p,
             hay: (r.text + " " + (r.text_b || "") + " " + r.t.join(" ")).toLowerCase() };
  });
  function options(sel, list) { sel.innerHTML = list.map(function (o) { return "<option value=\"" + esc(o[0]) + "\">" + esc(o[1]) + "</option>"; }).join(""); }
  var present = labels.map(function (l, i) { return [l, l]; });
  options($("f-pred"), [["", "any"]].concat(present));
  options($("f-gold"), [["", "any"]].concat(present, [["none", "no label"]]));
  options($("f-group"), [["", "any"]].concat(groups.filter(function (g) { return g.count > 0; }).map(function (g) { return [g.name, g.name + " (" + g.count + ")"]; })));

  var pair = R.some(function (x) { return !!x.r.sg; });
  $("legend").innerHTML =
    (methods.some(function (m) { return signed.has(m); }) ? "<div class=scale><b>Signed methods (" + esc(methods.filter(function (m) { return signed.has(m); }).join(", ")) + ")</b><span>−1 against</span><span class=ramp style=\"background:" + ramp(function (v) { return divColor(v); }, -1, 1) + "\"></span><span>+1 for the target</span></div>" : "") +
    (methods.some(function (m) { return !signed.has(m); }) ? "<div class=scale><b>Unsigned methods (" + esc(methods.filter(function (m) { return !signed.has(m); }).join(", ")) + ")</b><span>0</span><span class=ramp style=\"background:" + ramp(seqColor, 0, 1) + "\"></span><span>1</span></div>" : "") +
    "<div>" + (D.signed.length ? "<span class=\"sw c n\" style=\"background-color:" + rgb(divColor(-0.7)) + "\"></span>hatched: negative<br>" : "") + "<span class=\"sw c x\"></span>[CLS]/[SEP]: not on the scale</div>" +
    "<p class=note style=\"flex-basis:100%;margin:0\">Each row is divided by its largest absolute value over the record's words (the seed's per-record normalisation), so the darkest cell is the record's strongest token for that method. Hover over a cell for its raw value. The word view sums the scores of a word's ## pieces." + (pair ? " Pairs: the second segment starts a new line, marked B." : "") + "</p>";

  // Cell colours as classes of a generated style sheet (LEVELS steps a
  // side): far less to parse than a style per cell.
  var LEVELS = 32, rules = [];
  for (var q = 0; q <= LEVELS; q++) rules.push(".c.s" + q + "{background-color:" + rgb(seqColor(q / LEVELS)) + "}");
  for (q = 0; q <= 2 * LEVELS; q++) rules.push(".c.d" + q + "{background-color:" + rgb(divColor(q / LEVELS - 1)) + "}");
  var sheet = document.createElement("style");
  sheet.textContent = rules.join("\n");
  document.head.appendChild(sheet);
  var mnames = methods.map(esc);

  // The raw value on hover: a cell's title is written when the pointer first reaches it.
  var shownData = {};
  $("list").addEventListener("mouseover", function (e) {
    var cell = e.target;
    if (cell.tagName != "I" || cell.title) return;
    var tk = cell.parentNode, rec = tk.closest("article"), d = rec && shownData[rec.getAttribute("data-index")];
    if (!d) return;
    var j = +tk.getAttribute("data-j"), k = methods.indexOf(cell.getAttribute("data-m")), u = d.us[j], v = d.vals[k][j], m = methods[k];
    var t = d.scale[k] > 0 && v != null ? v / d.scale[k] : 0;
    cell.title = u.text + " · " + m + " " + raw(v) + (v == null ? "" : u.special ? " (" + u.text + ": not on the scale)" : " (" + (t < 0 ? "−" : "") + Math.abs(t).toFixed(2) + " of the record's largest)");
  });

  var probe = document.createElement("span");
  probe.className = "tt"; probe.style.position = "absolute"; probe.style.visibility = "hidden"; probe.textContent = "0000000000";
  document.body.appendChild(probe);
  var CH = probe.getBoundingClientRect().width / 10 || 7.8;
  probe.remove();
  function tokenWidth(text) { return Math.ceil(Math.min(24, Math.max(2, text.length)) * CH + 6); }

  function units(x, view) {
    var r = x.r, out = [];
    for (var i = 0; i < r.t.length; i++) {
      var seg = r.sg ? r.sg[i] : 0, special = x.sp.has(i), tok = r.t[i], last = out[out.length - 1];
      if (view == "words" && !special && tok.indexOf("##") == 0 && last && !last.special && last.seg == seg) { last.text += tok.slice(2); last.idx.push(i); continue; }
      out.push({ text: tok, special: special, seg: seg, idx: [i] });
    }
    return out;
  }
  function recordHTML(x, view, avail) {
    var r = x.r, us = units(x, view);
    var vals = methods.map(function (m) {
      var s = r.s[m], sg = signed.has(m);
      return us.map(function (u) { var t = null; u.idx.forEach(function (i) { if (s[i] != null) t = (t || 0) + (sg ? s[i] : Math.abs(s[i])); }); return t; });
    });
    var scale = vals.map(function (v) { var mx = 0; us.forEach(function (u, j) { if (!u.special && v[j] != null) mx = Math.max(mx, Math.abs(v[j])); }); return mx; });
    var lines = [], line = [], width = 0;
    us.forEach(function (u, j) {
      var w = tokenWidth(u.text) + 2, newSeg = j > 0 && u.seg != us[j - 1].seg;
      if (line.length && (width + w > avail || newSeg)) { lines.push(line); line = []; width = 0; }
      line.push(j); width += w;
    });
    if (line.length) lines.push(line);
    shownData[r.i] = { us: us, vals: vals, scale: scale };
    var status = x.correct == null ? "" : x.correct ? "<span class=\"badge right\">correct</span>" : "<span class=\"badge wrong\">misclassified</span>";
    var h = "<article class=rec id=\"rec-" + r.i + "\" data-index=" + r.i + " data-tokens=" + us.length + " aria-label=\"record " + r.i + "\"><div class=rh><span class=ri>#" + r.i + (r.id != null ? " · " + esc(r.id) : "") + "</span>" + status +
      "<span>gold: <b>" + (r.gold != null ? esc(cls(r.gold)) : r.label != null ? esc(r.label) + " (not a class)" : "–") + "</b></span><span>predicted: <b>" + esc(cls(r.p)) + "</b> " + fix(x.conf) + "</span>" + (r.g ? "<span class=\"badge grp\" title=\"the sample group of this record\">" + esc(groups[r.g].name) + "</span>" : "") + "</div>";
    h += "<p class=txt>" + (r.text_b != null ? "<span class=segb>A:</span> " + esc(r.text) + " <span class=segb>B:</span> " + esc(r.text_b) : esc(r.text)) + "</p>";
    lines.forEach(function (ln) {
      var seg = us[ln[0]].seg;
      h += "<div class=line><div class=lab aria-hidden=true><span class=lt>" + (pair ? (seg ? "B " : "A ") : "") + (view == "words" ? "word" : "token") + "</span>" + methods.map(function (m) { return "<span>" + esc(m) + "</span>"; }).join("") + "</div><div class=cols>";
      ln.forEach(function (j) {
        var u = us[j];
        h += "<span class=\"tk" + (u.special ? " sp" : "") + "\" data-j=" + j + " style=\"width:" + tokenWidth(u.text) + "px\"><span class=tt" + (u.text.length > 24 ? " title=\"" + esc(u.text) + "\"" : "") + ">" + esc(u.text) + "</span>";
        methods.forEach(function (m, k) {
          var v = vals[k][j], klass;
          if (v == null) klass = "c z";
          else if (u.special) klass = "c x";
          else {
            var t = scale[k] > 0 ? v / scale[k] : 0;
            klass = signed.has(m) ? "c d" + Math.round((Math.max(-1, Math.min(1, t)) + 1) * LEVELS) + (v < 0 ? " n" : "")
                                  : "c s" + Math.round(Math.max(0, Math.min(1, t)) * LEVELS);
          }
          h += "<i class=\"" + klass + "\" data-m=\"" + mnames[k] + "\"></i>";
        });
        h += "</span>";
      });
      h += "</div></div>";
    });
    return h + "</article>";
  }

  // ---- filter state: the controls, or the URL fragment applied to them
  var shown = PAGE;
  function readControls() {
    var view = document.querySelector("input[name=view]:checked");
    return { pred: $("f-pred").value, gold: $("f-gold").value, outcome: $("f-outcome").value, cmin: $("f-cmin").value, cmax: $("f-cmax").value,
             group: $("f-group").value, q: $("f-q").value, view: view ? view.value : "tokens" };
  }
  function matches(x, f) {
    var r = x.r, lo = parseFloat(f.cmin), hi = parseFloat(f.cmax), q = f.q.trim().toLowerCase();
    if (f.pred !== "" && labels[r.p] !== f.pred) return false;
    if (f.gold === "none" ? r.gold != null : f.gold !== "" && (r.gold == null || labels[r.gold] !== f.gold)) return false;
    if (f.outcome == "correct" && x.correct !== true) return false;
    if (f.outcome == "wrong" && x.correct !== false) return false;
    if (isFinite(lo) && x.conf < lo) return false;
    if (isFinite(hi) && x.conf > hi) return false;
    if (f.group !== "" && groups[r.g].name !== f.group) return false;
    if (q && x.hay.indexOf(q) < 0) return false;
    return true;
  }
  function render() {
    var f = readControls(), hits = R.filter(function (x) { return matches(x, f); });
    var list = $("list"), avail = Math.max(120, list.clientWidth - parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--lab")) - 4);
    var n = Math.min(shown, hits.length);
    shownData = {};
    list.setAttribute("data-width", String(Math.round(avail)));
    list.innerHTML = hits.slice(0, n).map(function (x) { return recordHTML(x, f.view, avail); }).join("");
    $("status").textContent = hits.length ? "Showing " + n + " of " + hits.length + " matching records (" + R.length + " in the page)." : "No record matches these filters.";
    var more = $("more");
    more.hidden = n >= hits.length;
    more.textContent = "Show " + Math.min(PAGE, hits.length - n) + " more";
    document.body.setAttribute("data-shown", String(n));
    document.body.setAttribute("data-matching", String(hits.length));
  }
  function writeFragment() {
    var f = readControls(), p = new URLSearchParams(), d = { cmin: "0", cmax: "1", view: "tokens" };
    Object.keys(f).forEach(function (k) { if (f[k] !== "" && f[k] !== d[k]) p.set(k, f[k]); });
    if (shown != PAGE) p.set("shown", String(shown));
    if ($("w-method").value != methods[0]) p.set("words", $("w-method").value);
    var h = p.toString();
    try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); } catch (e) { /* a local page may refuse; the filters still apply */ }
  }
  function changed() { shown = PAGE; render(); writeFragment(); }
  function applyFragment() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (!["pred", "gold", "outcome", "cmin", "cmax", "group", "q", "view", "shown", "words"].some(function (k) { return p.has(k); })) return false;
    function set(id, k, d) { var el = $(id); el.value = p.has(k) ? p.get(k) : d; if (p.has(k) && el.value !== p.get(k)) recordError("fragment: " + k + "=" + p.get(k) + " is not one of the choices"); }
    set("f-pred", "pred", ""); set("f-gold", "gold", ""); set("f-outcome", "outcome", ""); set("f-cmin", "cmin", "0"); set("f-cmax", "cmax", "1");
    set("f-group", "group", ""); set("f-q", "q", "");
    var v = p.get("view") || "tokens", radio = document.querySelector("input[name=view][value=\"" + (v == "words" ? "words" : "tokens") + "\"]");
    radio.checked = true;
    if (p.has("words") && methods.indexOf(p.get("words")) >= 0) { $("w-method").value = p.get("words"); renderWords(p.get("words")); }
    var s = parseInt(p.get("shown"), 10);
    shown = s > 0 ? s : PAGE;
    render();
    return true;
  }
  ["f-pred", "f-gold", "f-outcome", "f-group"].forEach(function (id) { $(id).addEventListener("change", changed); });
  ["f-cmin", "f-cmax", "f-q"].forEach(function (id) { $(id).addEventListener("input", changed); });
  document.querySelectorAll("input[name=view]").forEach(function (el) { el.addEventListener("change", changed); });
  $("f-reset").addEventListener("click", function () { $("filters").reset(); changed(); });
  $("more").addEventListener("click", function () { shown += PAGE; render(); writeFragment(); });
  $("w-method").addEventListener("change", function () { renderWords(this.value); writeFragment(); });
  window.addEventListener("hashchange", applyFragment);
  // The heatmap lines are packed to the list's width: packed again when it changes.
  var lastWidth = $("list").clientWidth, pending = false;
  function refit() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; if ($("list").clientWidth != lastWidth) { lastWidth = $("list").clientWidth; render(); } });
  }
  if (window.ResizeObserver) new ResizeObserver(refit).observe($("list")); else window.addEventListener("resize", refit);

  renderWords(methods[0]);
  if (!applyFragment()) render();
  // Open time: since navigation start, and the script's own share.
  document.body.setAttribute("data-load-ms", performance.now().toFixed(0));
  document.body.setAttribute("data-script-ms", (performance.now() - started).toFixed(0));
  document.body.setAttribute("data-ready", "1");
}
})();
</script>
</body>
</html>
"""#
}
