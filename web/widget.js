// Talkie widget loader: one tag puts a live character on any web page.
//
//   <script src="https://TALKIE/widget.js" data-character="ID" data-key="pk_..." async></script>
//
// shows a launcher bubble in the corner that opens the character; without data-character it only
// defines <talkie-character> for inline use. A classic script (works with `async`, no build
// step, no type="module" needed) that adds no globals: it loads the element's ES module from
// the same folder. Optional: data-labels (JSON), data-server (another Talkie server), data-name.
(() => {
  const script = document.currentScript;
  if (!script) return; // executed some other way (e.g. injected as text): nothing to read
  const base = new URL("./", script.src).href;
  const data = script.dataset;
  const ready = import(`${base}widget-element.js`);
  if (!data.character) return;
  const launch = () => {
    const el = document.createElement("talkie-character");
    el.setAttribute("launcher", "");
    el.setAttribute("character", data.character);
    el.setAttribute("key", data.key || "");
    for (const name of ["labels", "server", "name"]) {
      if (data[name]) el.setAttribute(name, data[name]);
    }
    ready.then(() => document.body.append(el), (err) => {
      console.warn(`talkie widget: could not load ${base}widget-element.js (${err?.message || err})`);
    });
  };
  if (document.body) launch();
  else document.addEventListener("DOMContentLoaded", launch, { once: true });
})();
