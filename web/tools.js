// UI tools: what a character can do in the page besides talking.
//
// The server sends {type: "tool_call", id, name, arguments} when the character calls a UI tool;
// `UiTools.run` finds the handler (one registered with registerTool: window.talkie's on the
// page, the element's in the widget; else a built-in: open_url, show_card, highlight), runs it and
// resolves to {ok, result}, which the client sends back as {type: "tool_result", id, ok, result}.
// It never rejects: an unknown tool is {ok: false, result: "no handler"}, a handler that throws
// is {ok: false, result: its message}.
//
// Arguments come from the model (and so, indirectly, from whoever talks to it): everything is
// rendered as text, and only absolute http(s) URLs are opened, linked or shown as images.

const HIGHLIGHT_MS = 4000;

export class UiTools {
  // `mark(target, on)` shows a highlighted element: the page styles a class; the widget, which
  // must not depend on (or add to) the host page's CSS, sets an outline on the element itself.
  constructor({ stage, mark = (target, on) => target.classList.toggle("talkie-highlight", on) }) {
    this.stage = stage; // where cards are shown (the video's frame)
    this.mark = mark;
    this.handlers = new Map(); // registered by the embedding page: name -> async (args) => result
    this.builtins = {
      open_url: (args) => this.openUrl(args),
      show_card: (args) => this.showCard(args),
      highlight: (args) => this.highlight(args),
    };
    this.highlighted = null;
  }

  register(name, handler) {
    if (typeof name !== "string" || !name) throw new TypeError("registerTool: name must be a non-empty string");
    if (typeof handler !== "function") throw new TypeError("registerTool: handler must be a function");
    this.handlers.set(name, handler);
    return () => { if (this.handlers.get(name) === handler) this.handlers.delete(name); };
  }

  async run(name, rawArgs) {
    const args = rawArgs && typeof rawArgs === "object" && !Array.isArray(rawArgs) ? rawArgs : {};
    const handler = this.handlers.get(name) || (Object.hasOwn(this.builtins, name) ? this.builtins[name] : null);
    if (!handler) return { ok: false, result: "no handler" };
    try {
      return { ok: true, result: jsonSafe(await handler(args)) };
    } catch (err) {
      return { ok: false, result: String(err?.message || err || "the handler failed") };
    }
  }

  clear() {
    this.stage.querySelector(".tool-card")?.remove();
  }

  // -- built-in handlers --

  openUrl(args) {
    const url = webUrl(args.url);
    if (!url) throw new Error("only http and https links can be opened");
    window.open(url.href, "_blank", "noopener,noreferrer");
    // A tab opened without a click may be blocked: the card's link is one click away.
    this.showCard({ title: args.title || url.hostname, text: "Opened in a new tab.", link: url.href, link_text: `Open ${url.hostname}` });
    return { opened: url.href };
  }

  showCard(args) {
    const title = text(args.title, 120);
    const body = text(args.text ?? args.description, 400);
    if (!title && !body) throw new Error("a card needs a title or a text");
    this.stage.querySelector(".tool-card")?.remove();
    const card = document.createElement("aside");
    card.className = "tool-card";
    card.setAttribute("aria-label", title || "Information");
    card.setAttribute("role", "status");
    const image = webUrl(args.image ?? args.image_url);
    if (image) {
      const img = document.createElement("img");
      img.alt = "";
      img.referrerPolicy = "no-referrer";
      img.addEventListener("error", () => img.remove());
      img.src = image.href;
      card.append(img);
    }
    const content = document.createElement("div");
    content.className = "body";
    if (title) content.append(element("h4", title));
    const price = typeof args.price === "number" ? String(args.price) : text(args.price, 40);
    if (price) content.append(element("p", price, "price"));
    if (body) content.append(element("p", body));
    const link = webUrl(args.link ?? args.url);
    if (link) {
      const a = element("a", text(args.link_text, 60) || "Learn more");
      a.href = link.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      content.append(a);
    }
    const close = element("button", "×", "close");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", () => card.remove());
    card.append(content, close);
    this.stage.append(card);
    return { shown: title || body.slice(0, 60) };
  }

  highlight(args) {
    const selector = text(args.selector, 300);
    if (!selector) throw new Error("highlight needs a CSS selector");
    let target;
    try {
      target = document.querySelector(selector);
    } catch {
      throw new Error(`"${selector.slice(0, 80)}" is not a valid CSS selector`);
    }
    if (!target) throw new Error(`nothing on the page matches "${selector.slice(0, 80)}"`);
    if (this.highlighted) {
      clearTimeout(this.highlighted.timer);
      this.mark(this.highlighted.target, false);
    }
    this.mark(target, true);
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    const timer = setTimeout(() => this.mark(target, false), HIGHLIGHT_MS);
    this.highlighted = { target, timer };
    return { highlighted: selector, text: (target.textContent || "").trim().slice(0, 80) };
  }
}

function text(value, max) {
  return typeof value === "string" ? value.trim().slice(0, max) : "";
}

function element(tag, content, className = "") {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function jsonSafe(value) {
  if (value === undefined) return null;
  try { return JSON.parse(JSON.stringify(value)); } catch { return String(value); }
}

// Only absolute http(s) URLs: a tool's arguments come from the model, never trust them further.
function webUrl(value) {
  if (typeof value !== "string" || !value.trim()) return null;
  try {
    const url = new URL(value.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}
