// The widget's styles, inside its shadow root: nothing here reaches the host page, and the host
// page reaches in only through the --talkie-* custom properties (theming) and ::part().
// `all: initial` on the host stops the page's inherited styles (font, colour, line height,
// letter spacing...) from changing the widget; custom properties are not reset by it.

export const WIDGET_CSS = `
:host {
  all: initial;
  --_accent: var(--talkie-accent, #6b4de6);
  --_accent-ink: var(--talkie-accent-ink, #ffffff);
  --_bg: var(--talkie-bg, #ffffff);
  --_ink: var(--talkie-ink, #1d1b26);
  --_muted: var(--talkie-muted, #5f5a70);
  --_line: var(--talkie-line, #e2deee);
  --_bad: var(--talkie-error, #c62f3d);
  --_radius: var(--talkie-radius, 14px);
  --_bubble: var(--talkie-bubble-size, 64px);
  --_offset: var(--talkie-offset, 20px);
  display: block;
  position: relative;
  font-family: var(--talkie-font, system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif);
  font-size: var(--talkie-font-size, 15px);
  line-height: 1.4;
  color: var(--_ink);
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }
button, input { font: inherit; color: inherit; }
:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

.panel {
  display: flex; flex-direction: column; gap: 8px;
  background: var(--_bg); color: var(--_ink);
  border: 1px solid var(--_line); border-radius: var(--_radius);
  padding: 10px; width: 100%; height: 100%;
  container-type: inline-size; /* the controls adapt to the panel's width, not the window's */
}
.head { display: flex; align-items: center; gap: 8px; min-height: 28px; }
.name { font-weight: 650; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pill {
  font-size: 0.75em; padding: 2px 8px; border-radius: 999px;
  background: var(--_line); color: var(--_ink); text-transform: lowercase;
}
.pill[data-state="listening"] { background: #d9f3e6; color: #11603a; }
.pill[data-state="thinking"] { background: #fff0d2; color: #7a4b00; }
.pill[data-state="speaking"] { background: var(--_accent); color: var(--_accent-ink); }
.close { border: 0; background: transparent; font-size: 1.4em; line-height: 1; padding: 2px 8px; border-radius: 8px; cursor: pointer; }
.close:hover { background: var(--_line); }

.stage {
  position: relative; overflow: hidden; flex: none;
  aspect-ratio: 16 / 9; width: 100%;
  border-radius: calc(var(--_radius) - 4px); background: #15131c;
}
video { display: block; width: 100%; height: 100%; object-fit: cover; background: #15131c; }
.overlay {
  position: absolute; inset: 0; display: flex; flex-direction: column; gap: 10px;
  align-items: center; justify-content: center; padding: 14px; text-align: center;
  background: rgb(16 12 30 / 55%); color: #fff;
}
.overlay.hidden { display: none; }
.overlay p { margin: 0; max-width: 34em; text-shadow: 0 1px 2px rgb(0 0 0 / 50%); }
.overlay.error { background: rgb(60 10 20 / 78%); }
.overlay.error p { font-weight: 600; }
.overlay .detail { font-size: 0.8em; opacity: 0.9; font-weight: 400; }

button.primary, .bar button, .overlay button {
  border: 0; border-radius: 999px; padding: 7px 14px; cursor: pointer;
  background: var(--_accent); color: var(--_accent-ink); font-weight: 600;
}
.bar button.secondary { background: var(--_line); color: var(--_ink); }
.bar button[aria-pressed="true"] { background: var(--_bad); color: #fff; }
button:disabled { opacity: 0.5; cursor: default; }

.captions {
  flex: 1 1 auto; min-height: 3.2em; max-height: var(--talkie-captions-height, 9em); overflow-y: auto;
  font-size: 0.9em; padding: 2px 2px;
}
.captions p { margin: 0 0 4px; }
.captions .empty { color: var(--_muted); }
.captions .who { font-weight: 650; margin-right: 6px; }
.captions .user .who { color: var(--_muted); }
.captions .character .who { color: var(--_accent); }
.captions .error { color: var(--_bad); }
.captions .partial .text { color: var(--_muted); font-style: italic; }
.captions .cut .text::after { content: " …"; }
.note { margin: 0; font-size: 0.82em; color: var(--_bad); }
.note[hidden] { display: none; }

.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; }
.say { display: flex; gap: 6px; flex: 1 1 12em; min-width: 0; }
.say input {
  flex: 1; min-width: 0; padding: 7px 12px; border-radius: 999px;
  border: 1px solid var(--_line); background: var(--_bg);
}

/* A tool's card over the video (tools.js builds it). */
.tool-card {
  position: absolute; right: 8px; top: 8px; width: min(240px, 60%); max-height: calc(100% - 16px); overflow: auto;
  background: var(--_bg); color: var(--_ink); border-radius: calc(var(--_radius) - 4px);
  box-shadow: 0 6px 24px rgb(0 0 0 / 30%); animation: talkie-in 0.2s ease-out;
}
.tool-card img { display: block; width: 100%; aspect-ratio: 16 / 10; object-fit: cover; }
.tool-card .body { padding: 8px 10px 10px; display: flex; flex-direction: column; gap: 4px; }
.tool-card h4 { margin: 0; padding-right: 22px; font-size: 0.95em; }
.tool-card p { margin: 0; font-size: 0.82em; color: var(--_muted); }
.tool-card .price { font-weight: 700; color: var(--_accent); }
.tool-card a { color: var(--_accent); font-weight: 600; font-size: 0.85em; }
.tool-card .close { position: absolute; top: 2px; right: 2px; background: rgb(255 255 255 / 80%); }
@keyframes talkie-in { from { opacity: 0; transform: translateY(-6px); } }

/* Launcher: a bubble in the corner that opens the panel above it. */
:host(:not([launcher])) .bubble { display: none; }
:host([launcher]) {
  position: fixed; right: var(--_offset); bottom: var(--_offset); z-index: var(--talkie-z-index, 2147483000);
}
.bubble {
  display: block; width: var(--_bubble); height: var(--_bubble); padding: 0; margin-left: auto;
  border-radius: 50%; border: 3px solid var(--_accent); background: var(--_accent); cursor: pointer;
  overflow: hidden; box-shadow: 0 6px 20px rgb(20 10 60 / 30%); position: relative;
}
.bubble img { width: 100%; height: 100%; object-fit: cover; display: block; }
.bubble .initial { color: var(--_accent-ink); font-weight: 700; font-size: calc(var(--_bubble) * 0.4); }
.bubble:hover { transform: scale(1.05); }
:host([launcher]) .panel {
  position: absolute; right: 0; bottom: calc(var(--_bubble) + 12px);
  width: var(--talkie-panel-width, 380px); height: auto; max-height: calc(100vh - var(--_bubble) - 3 * var(--_offset));
  box-shadow: 0 10px 40px rgb(20 10 60 / 28%); overflow: auto;
}
:host([launcher]:not([open])) .panel { display: none; }
@media (max-width: 600px) {
  :host([launcher][open]) .panel {
    position: fixed; inset: 0; width: auto; max-height: none; height: 100%;
    border-radius: 0; border: 0;
  }
  :host([launcher][open]) .captions { max-height: none; }
  :host([launcher][open]) .bubble { display: none; }
}

/* Narrow containers (an inline element in a sidebar, a phone): bigger touch targets. */
@container (max-width: 420px) {
  .bar button, .say input { padding: 10px 14px; }
  .say { flex-basis: 100%; }
}
@media (prefers-reduced-motion: reduce) {
  .tool-card { animation: none; }
  .bubble:hover { transform: none; }
}
`;
