// The chat page's script: send without reloading, and poll for agents' replies.
// The server sends the conversation's latest lines on each poll, in order; lines already on the
// page are updated in place (a message deleted by an agent, a message that could not be delivered).
(function () {
  "use strict";

  const POLL_MS = 1500;
  const chat = document.getElementById("chat");
  const list = document.getElementById("lines");
  const form = document.getElementById("composer");
  const textarea = document.getElementById("content");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const newConversation = document.getElementById("new-conversation");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function render(line) {
    let item = list.querySelector('li[data-id="' + line.id + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.id = line.id;
      if (line.kind !== "notice") {
        const author = document.createElement("span");
        author.className = "author";
        item.appendChild(author);
      }
      const text = document.createElement("span");
      text.className = "text";
      item.appendChild(text);
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
      list.appendChild(item);
      item.scrollIntoView({ block: "end" });
    }
    item.className = "line " + line.kind + (line.failed ? " failed" : "");
    const author = item.querySelector(".author");
    if (author) author.textContent = line.author;
    item.querySelector(".text").textContent = line.text; // textContent: never HTML from the server
    return item;
  }

  function showStatus(value) {
    status.dataset.status = value || "";
    status.textContent = value ? value.charAt(0).toUpperCase() + value.slice(1) : "";
    newConversation.hidden = !value;
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  async function poll() {
    try {
      const response = await fetch(chat.dataset.linesUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        // appendChild moves a line that is already there: the page keeps the server's order.
        data.lines.forEach(function (line) { list.appendChild(render(line)); });
        showStatus(data.status);
      }
    } catch (err) {
      // The server is restarting, or the network is down: try again at the next tick.
    } finally {
      window.setTimeout(poll, POLL_MS);
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const content = textarea.value.trim();
    if (!content) return;
    showError("");
    form.classList.add("sending");
    try {
      const response = await fetch(chat.dataset.sendUrl, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
        body: new FormData(form),
      });
      const data = await response.json();
      if (!response.ok) {
        showError(data.error || "Your message could not be sent.");
        return;
      }
      textarea.value = "";
      render(data.line);
    } catch (err) {
      showError("Your message could not be sent: the site did not answer. Please try again.");
    } finally {
      form.classList.remove("sending");
      textarea.focus();
    }
  });

  // Enter sends, Shift+Enter starts a new line.
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  poll();
})();
