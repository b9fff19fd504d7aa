// The dashboard's shell: navigation, the banner that says when the server
// is unreachable or wants a token (and clears itself once a call works), and
// the page for the current hash route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { onTrouble, setToken, token, type Trouble } from "./api";
import { Overview } from "./pages/overview";
import { Queues } from "./pages/queues";
import { TaskDetail } from "./pages/task";
import { Tasks } from "./pages/tasks";
import { useRoute } from "./router";

function TokenForm({ refused }: { refused: boolean }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) setToken(value.trim());
      }}
    >
      <p>
        {refused
          ? "The server refused that token. Enter another:"
          : "This server needs a token (errand serve --auth-token). It is kept in this tab only."}
      </p>
      <label>
        Token
        <input type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit">Use token</button>
    </form>
  );
}

function Banner() {
  const [trouble, setTrouble] = useState<Trouble | null>(null);
  useEffect(() => onTrouble(setTrouble), []);
  if (!trouble) return null;
  return (
    <div class={`banner banner-${trouble.kind}`} role="alert">
      {trouble.kind === "unreachable" && "Cannot reach the errand server. Retrying…"}
      {trouble.kind === "unavailable" && `The server is not ready: ${trouble.message}. Retrying…`}
      {trouble.kind === "token" && <TokenForm refused={trouble.refused} />}
    </div>
  );
}

function App() {
  const route = useRoute();
  const [section = "overview", id] = route.path;
  // A new token (or none) remounts the page so that it loads again at once.
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    // Only a new token starts the page over (what it loaded was refused);
    // after an outage the polls simply go on, keeping what was typed.
    let wanted = false;
    return onTrouble((t) => {
      if (t === null && wanted) setGeneration((g) => g + 1);
      wanted = t?.kind === "token";
    });
  }, []);
  const link = (to: string, label: string) => (
    <a href={`#/${to}`} aria-current={section === to ? "page" : undefined}>
      {label}
    </a>
  );
  let page;
  if (section === "tasks" && id) page = <TaskDetail id={id} />;
  else if (section === "tasks") page = <Tasks route={route} />;
  else if (section === "queues") page = <Queues />;
  else page = <Overview />;
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          errand
        </a>
        <nav aria-label="Main">
          {link("overview", "Overview")}
          {link("tasks", "Tasks")}
          {link("queues", "Queues")}
          <a href="api.html">API</a>
        </nav>
        {token() && (
          <button
            class="link small"
            onClick={() => {
              sessionStorage.clear();
              location.reload();
            }}
          >
            Forget token
          </button>
        )}
      </header>
      <Banner />
      <main key={generation}>{page}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
