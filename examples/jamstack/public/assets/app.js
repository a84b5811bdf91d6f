// Talks to the API through Portico, on the page's own origin.
"use strict";

async function api(path, options) {
  const r = await fetch("/api/" + path, options);
  if (!r.ok) throw new Error("API answered " + r.status);
  return r.json();
}

async function refresh() {
  const list = document.getElementById("todos");
  list.textContent = "";
  for (const t of (await api("todos")).todos) {
    const li = document.createElement("li");
    li.textContent = t.title;
    list.appendChild(li);
  }
}

async function main() {
  try {
    document.getElementById("hello").textContent = (await api("hello")).message;
    await refresh();
  } catch (e) {
    document.getElementById("hello").textContent = "The API is not reachable: " + e.message;
  }
  document.getElementById("add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const title = ev.target.title.value.trim();
    if (!title) return;
    await api("todos", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({title})});
    ev.target.reset();
    await refresh();
  });
}

main();
