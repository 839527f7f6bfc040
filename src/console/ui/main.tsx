// The console page: sign-in, then a page per hash route (#/overview, #/connections, #/subjects, #/streams, #/latency, #/cluster, #/accounts, #/audit, #/alerts). Served by natter
// under /console (src/console/routes.ts), bundled with Preact and uPlot by Bun's bundler.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { login, logout, session, type Me } from "./api.ts";
import { AccountsPage } from "./accounts.tsx";
import { AlertBanner, AlertsPage } from "./alerts.tsx";
import { AuditPage } from "./audit.tsx";
import { ClusterPage } from "./cluster.tsx";
import { ConnectionsPage } from "./connections.tsx";
import { LatencyPage } from "./latency.tsx";
import { OverviewPage } from "./overview.tsx";
import { StreamsPage } from "./streams.tsx";
import { SubjectsPage } from "./subjects.tsx";
import "./style.css";

const PAGES = [
  { path: "overview", label: "Overview" },
  { path: "connections", label: "Connections" },
  { path: "subjects", label: "Subjects" },
  { path: "streams", label: "Streams" },
  { path: "latency", label: "Latency" },
  { path: "cluster", label: "Cluster" },
  { path: "accounts", label: "Accounts" },
  { path: "audit", label: "Audit" },
  { path: "alerts", label: "Alerts" },
] as const;
type PagePath = (typeof PAGES)[number]["path"];

function currentPage(): PagePath {
  const p = location.hash.replace(/^#\/?/, "");
  return PAGES.some((x) => x.path === p) ? (p as PagePath) : "overview";
}

function Login({ onIn }: { onIn: (me: Me) => void }) {
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    try {
      onIn(await login(String(f.get("user")), String(f.get("password"))));
    } catch (err) {
      setError((err as Error).message);
    }
  }
  return (
    <main class="login">
      <form onSubmit={submit}>
        <h1>natter console</h1>
        <label>User <input name="user" autocomplete="username" required autofocus /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function toggleTheme() {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
  localStorage.setItem("natter-console-theme", root.dataset.theme);
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [page, setPage] = useState<PagePath>(currentPage());
  useEffect(() => {
    session().then(setMe, () => setMe(null));
    const onHash = () => setPage(currentPage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  if (me === undefined) return <p>Loading…</p>;
  if (me === null) return <Login onIn={setMe} />;
  return (
    <>
      <header>
        <strong class="brand">natter</strong>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a key={p.path} href={`#/${p.path}`} aria-current={p.path === page ? "page" : undefined}>{p.label}</a>
          ))}
        </nav>
        <span class="who" data-role={me.role}>{me.user} ({me.role})</span>
        <button type="button" onClick={toggleTheme} aria-label="Switch light/dark">◐</button>
        <button type="button" onClick={() => logout().then(() => setMe(null))}>Sign out</button>
      </header>
      <AlertBanner />
      <main>
        {page === "overview" && <OverviewPage />}
        {page === "connections" && <ConnectionsPage me={me} />}
        {page === "subjects" && <SubjectsPage />}
        {page === "streams" && <StreamsPage me={me} />}
        {page === "latency" && <LatencyPage />}
        {page === "cluster" && <ClusterPage />}
        {page === "accounts" && <AccountsPage />}
        {page === "audit" && <AuditPage />}
        {page === "alerts" && <AlertsPage />}
      </main>
    </>
  );
}

const saved = localStorage.getItem("natter-console-theme");
if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
render(<App />, document.getElementById("app")!);
