// The lab's sample app: a small web page showing the app's version and the GREETING the
// ConfigMap in Git gives it. The version and whether this build is a broken release are
// set at build time (-ldflags "-X main.version=1.1.0 -X main.broken=true"): a broken
// release serves its page but fails its readiness probe, so a rollout of it never completes.
package main

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

var (
	version = "dev"
	broken  = "false"
)

// setting reads NAME from the mounted ConfigMap (/etc/guestbook/NAME, refreshed by the
// kubelet while the pod runs), else from the environment (set when the pod started).
func setting(name, fallback string) string {
	if b, err := os.ReadFile("/etc/guestbook/" + name); err == nil {
		return strings.TrimSpace(string(b))
	}
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	host, _ := os.Hostname()
	greeting := setting("GREETING", "(no GREETING set)")
	theme := setting("THEME", "light")
	bg, fg := "#ffffff", "#1f2328"
	if theme == "dark" {
		bg, fg = "#1f2328", "#f0f6fc"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-App-Version", version)
	fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>guestbook %[1]s</title></head>
<body style="font-family: sans-serif; background: %[4]s; color: %[5]s; padding: 1em">
<h1 id="greeting">%[2]s</h1>
<p>guestbook <b id="version">%[1]s</b>, served by pod <code id="pod">%[3]s</code></p>
</body></html>
`, html.EscapeString(version), html.EscapeString(greeting), html.EscapeString(host), bg, fg)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	if broken == "true" {
		http.Error(w, "release "+version+" is broken on purpose: not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func main() {
	addr := ":" + setting("PORT", "8080")
	mux := http.NewServeMux()
	mux.HandleFunc("/", page)
	mux.HandleFunc("/healthz", healthz)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	fmt.Printf("guestbook %s (broken=%s) listening on %s\n", version, broken, addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
