package httpingest

import "net/http"

type httpRequest = http.Request

// httpFunc records each request with see, then lets next answer it. The
// emulator only takes the Authorization header, so requests are rewritten
// to it after recording.
func httpFunc(see func(*http.Request), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		see(r)
		if v := r.Header.Get("X-Auth"); v != "" {
			r.Header.Set("Authorization", "Bearer "+v[len("Key "):])
		}
		next.ServeHTTP(w, r)
	})
}
