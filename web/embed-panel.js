// "Put this character on your site": the widget snippet for the picked character, from
// GET /v1/characters/{id}/embed (the snippet has a placeholder where the site's publishable
// key goes, and the command that creates that key: no key is ever shown here).

export class EmbedPanel {
  constructor({ root, api }) {
    this.root = root;
    this.api = api;
    this.q = (sel) => root.querySelector(sel);
    this.character = null;
    this.q(".embed-origin").addEventListener("change", () => this.load());
    for (const button of root.querySelectorAll("button[data-copy]")) {
      button.addEventListener("click", () => this.copy(button));
    }
  }

  setCharacter(character) {
    this.character = character;
    this.root.hidden = !character;
    this.load();
  }

  async load() {
    const c = this.character;
    if (!c) return;
    this.q(".embed-for").textContent = c.name;
    const origin = this.q(".embed-origin").value.trim();
    const query = origin ? `?origin=${encodeURIComponent(origin)}` : "";
    try {
      const body = await this.api(`/v1/characters/${encodeURIComponent(c.id)}/embed${query}`);
      if (this.character !== c) return;
      this.q(".embed-script").textContent = body.script;
      this.q(".embed-element").textContent = body.element;
      this.q(".embed-key").textContent = body.create_key;
      this.status("");
    } catch (err) {
      this.status(err.message, "error");
    }
  }

  async copy(button) {
    const text = this.q(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      this.status("Copied.", "ok");
    } catch {
      this.status("Copying is not allowed here: select the text and copy it.", "warn");
    }
  }

  status(text, kind = "") {
    const el = this.q(".embed-status");
    el.textContent = text;
    el.className = `embed-status status ${kind}`;
  }
}
