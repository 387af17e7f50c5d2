package falcon

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

type discovery struct {
	Resources []struct {
		DataFeedURL  string `json:"dataFeedURL"`
		SessionToken struct {
			Token string `json:"token"`
		} `json:"sessionToken"`
		RefreshURL      string `json:"refreshActiveSessionURL"`
		RefreshInterval int    `json:"refreshActiveSessionInterval"`
	} `json:"resources"`
}

func token(t *testing.T, srv *httptest.Server, secret string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/oauth2/token", url.Values{"client_id": {"id"}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v.AccessToken
}

func discover(t *testing.T, srv *httptest.Server, tok string) discovery {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/sensors/entities/datafeed/v2?appId=test1&format=json", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("discover: %d", resp.StatusCode)
	}
	var d discovery
	json.NewDecoder(resp.Body).Decode(&d)
	return d
}

func open(t *testing.T, feedURL, session, offset string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", feedURL+"&offset="+offset, nil)
	req.Header.Set("Authorization", "Token "+session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The contract, step by step: 201/403 tokens, N partitions, inclusive
// offsets, keep-alives, one stream per session token, the appId lease
// outliving a disconnect, expiry unless refreshed.
func TestContract(t *testing.T) {
	e := New(Config{ClientID: "id", ClientSecret: "secret", Partitions: 3, RefreshInterval: 2 * time.Second,
		LeaseLinger: 300 * time.Millisecond, KeepAlive: 100 * time.Millisecond})
	srv := httptest.NewServer(e)
	defer srv.Close()
	if code, _ := token(t, srv, "wrong"); code != 403 {
		t.Fatalf("bad secret: %d", code)
	}
	code, tok := token(t, srv, "secret")
	if code != 201 || tok == "" {
		t.Fatalf("token: %d", code)
	}
	e.Append(1, 10)
	d := discover(t, srv, tok)
	if len(d.Resources) != 3 || d.Resources[1].RefreshInterval != 2 {
		t.Fatalf("discovery: %+v", d)
	}
	r1 := d.Resources[1]
	resp := open(t, r1.DataFeedURL, r1.SessionToken.Token, "4")
	if resp.StatusCode != 200 {
		t.Fatalf("open: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var offsets []int64
	blanks := 0
	for sc.Scan() && blanks < 2 {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			blanks++
			continue
		}
		offsets = append(offsets, gjson.Get(sc.Text(), "metadata.offset").Int())
	}
	if len(offsets) != 6 || offsets[0] != 4 || offsets[5] != 9 {
		t.Fatalf("offsets from 4 inclusive: %v", offsets)
	}
	// The session token opens one stream only.
	if again := open(t, r1.DataFeedURL, r1.SessionToken.Token, "0"); again.StatusCode != 401 {
		t.Fatalf("reused session token: %d", again.StatusCode)
	}
	// The appId is in use while a stream is open, and for the linger after.
	if d := discover(t, srv, tok); len(d.Resources) != 0 {
		t.Fatal("appId in use, yet resources")
	}
	resp.Body.Close()
	time.Sleep(50 * time.Millisecond)
	if d := discover(t, srv, tok); len(d.Resources) != 0 {
		t.Fatal("appId freed at once after the disconnect")
	}
	time.Sleep(400 * time.Millisecond)
	d = discover(t, srv, tok)
	if len(d.Resources) != 3 {
		t.Fatal("appId not freed after the linger")
	}
	// An unrefreshed partition dies at the interval; a refreshed one lives.
	r0, r2 := d.Resources[0], d.Resources[2]
	s0, s2 := open(t, r0.DataFeedURL, r0.SessionToken.Token, "0"), open(t, r2.DataFeedURL, r2.SessionToken.Token, "0")
	defer s0.Body.Close()
	defer s2.Body.Close()
	ended := make(chan time.Time, 2)
	for _, s := range []*http.Response{s0, s2} {
		go func() {
			sc := bufio.NewScanner(s.Body)
			for sc.Scan() {
			}
			ended <- time.Now()
		}()
	}
	start := time.Now()
	for range 3 {
		time.Sleep(time.Second)
		req, _ := http.NewRequest("POST", r2.RefreshURL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("refresh: %v %v", err, resp.StatusCode)
		}
		resp.Body.Close()
	}
	select {
	case at := <-ended:
		if d := at.Sub(start); d < 1900*time.Millisecond || d > 2500*time.Millisecond {
			t.Fatalf("unrefreshed partition ended after %v", d)
		}
	default:
		t.Fatal("unrefreshed partition still streaming")
	}
	select {
	case <-ended:
		t.Fatal("refreshed partition ended")
	default:
	}
	if st := e.Stats(); st.Expired != 1 || st.Refreshes[2] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Events differ in the types of their fields, and each carries its offset.
func TestEventsVaryFieldTypes(t *testing.T) {
	kinds := map[string]bool{}
	strTimes := 0
	for off := range int64(400) {
		ev := Event(1, 0, off, time.Now())
		if !json.Valid(ev) {
			t.Fatalf("invalid JSON: %s", ev)
		}
		m := gjson.ParseBytes(ev).Get("metadata")
		if m.Get("offset").Int() != off {
			t.Fatal("offset")
		}
		kinds[m.Get("eventType").String()] = true
		if m.Get("eventCreationTime").Type == gjson.String {
			strTimes++
		}
	}
	if len(kinds) < 8 || strTimes == 0 || strTimes == 400 {
		t.Fatalf("kinds %v, string times %d", kinds, strTimes)
	}
}
