package api

import (
	"embed"
	"net/http"
)

// web holds the phone page, served from the binary: no external assets.
//
//go:embed web/phone.html web/phone.js web/phone.css
var web embed.FS

// phoneRoutes serve the softphone page at /phone.
func (s *Server) phoneRoutes() []*route {
	return []*route{
		{method: "GET", pattern: "/phone", summary: "The softphone page: sign in, connect this browser, dial, mute, conference, DTMF, status", tag: "pages",
			public: true, raw: servePage("web/phone.html", "text/html; charset=utf-8")},
		{method: "GET", pattern: "/phone/phone.js", summary: "The softphone page's script", tag: "pages",
			public: true, raw: servePage("web/phone.js", "text/javascript; charset=utf-8")},
		{method: "GET", pattern: "/phone/phone.css", summary: "The softphone page's style", tag: "pages",
			public: true, raw: servePage("web/phone.css", "text/css; charset=utf-8")},
	}
}

// servePage answers with one embedded file and headers that keep the page
// to itself: scripts, styles and connections from this box only.
func servePage(name, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := web.ReadFile(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(b)
	}
}
