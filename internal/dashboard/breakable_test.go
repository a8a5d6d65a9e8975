package dashboard

import (
	"html"
	"strings"
	"testing"
)

func TestBreakable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/items/:id", "/items/:id"}, // short: as it is
		{"</script> & more", "&lt;/script&gt; &amp; more"},
		{"/api/v1/organisations/:organisationID/projects", "/<wbr>api/<wbr>v1/<wbr>organisations/<wbr>:organisationID/<wbr>projects"},
		{"github.com/errmon/errmon.(*Monitor).Record.func1", "github<wbr>.com/<wbr>errmon/<wbr>errmon<wbr>.(*Monitor)<wbr>.Record<wbr>.func1"},
		{"https://deployments.example.com/v2/x?a=1&b=2", "https://deployments<wbr>.example<wbr>.com/<wbr>v2/<wbr>x?a=1&amp;<wbr>b=2"},
		{"gin@v1.12.0/context.go:192 and /srv/app/internal/handlers/order.go", "gin@v1.12.0/context.go:192 and /<wbr>srv/<wbr>app/<wbr>internal/<wbr>handlers/<wbr>order<wbr>.go"},
		{"a<b>/" + strings.Repeat("x", 40), "a&lt;b&gt;/<wbr>" + strings.Repeat("x", 40)},
		{`{"order":{"id":"ord_8f14e45fceea167a5a36dedd4bea2543"}}`, `{&#34;order&#34;:<wbr>{&#34;id&#34;:<wbr>&#34;ord_<wbr>8f14e45fceea167a5a36dedd4bea2543&#34;}}`},
		{"127.0.0.1:45785 http://127.0.0.1:45785/a/b/c/d/e/f/g/h", "127.0.0.1:45785 http://127.0.0.1:45785/<wbr>a/<wbr>b/<wbr>c/<wbr>d/<wbr>e/<wbr>f/<wbr>g/<wbr>h"},
		{"  \n\t{\n  \"k\": 1\n}", "  \n\t{\n  &#34;k&#34;: 1\n}"}, // white space as it is
	}
	for _, tc := range tests {
		got := string(breakable(tc.in))
		if got != tc.want {
			t.Errorf("breakable(%q)\n = %s\nwant %s", tc.in, got, tc.want)
		}
		if text := html.UnescapeString(strings.ReplaceAll(got, "<wbr>", "")); text != tc.in {
			t.Errorf("breakable(%q) changes the text: %q", tc.in, text)
		}
	}
}
