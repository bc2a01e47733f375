#include "vault/drill/monthly.h"

#include <boost/json.hpp>

namespace cairn::vault {
namespace {

namespace json = boost::json;

constexpr std::string_view kBodyBegin = "<!--cairn-body-->";
constexpr std::string_view kBodyEnd = "<!--/cairn-body-->";
constexpr std::string_view kScriptBegin =
    "<script type=\"application/json\" id=\"cairn-signed-report\">";
constexpr std::string_view kScriptEnd = "</script>";

std::string Escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// A value as table text: strings as they are, null as "-".
std::string Text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return Escape(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  return Escape(json::serialize(*v));
}

// Milliseconds as seconds with one decimal ("0.8 s").
std::string Seconds(const json::value* millis) {
  if (millis == nullptr || !millis->is_number()) return "-";
  const uint64_t ms = millis->to_number<uint64_t>();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

std::string Duration(const json::value* v) {
  if (v == nullptr || !v->is_number()) return "-";
  const uint64_t s = v->to_number<uint64_t>();
  if (s % 86400 == 0) return std::to_string(s / 86400) + " d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + " h";
  if (s % 60 == 0) return std::to_string(s / 60) + " min";
  return std::to_string(s) + " s";
}

const json::value* At(const json::object& o, std::string_view key) { return o.if_contains(key); }

std::string Verdict(bool good, std::string_view yes, std::string_view no) {
  return std::string("<span class=\"") + (good ? "ok" : "bad") + "\">" +
         std::string(good ? yes : no) + "</span>";
}

}  // namespace

std::string RenderMonthlyBody(const json::object& r) {
  std::string h;
  h += "<h1>Recovery evidence: " + Text(At(r, "department")) + ", " + Text(At(r, "month")) +
       "</h1>\n";
  h += "<p class=\"meta\">Vault site " + Text(At(r, "vault_site")) + ". Generated " +
       Text(At(r, "generated")) + ". Window " + Text(At(r, "from")) + " to " + Text(At(r, "to")) +
       ". Signed with the vault's evidence key (SHA-256 of the public key " +
       Text(At(r, "key_sha256")) +
       "); check with <code>cairn-vault report verify FILE</code>.</p>\n";
  const json::value* rows = At(r, "sources");
  uint64_t compliant = 0, total = 0;
  if (rows != nullptr && rows->is_array()) {
    for (const auto& v : rows->as_array()) {
      ++total;
      const json::value* c = v.as_object().if_contains("compliant");
      compliant += c != nullptr && c->is_bool() && c->as_bool();
    }
  }
  h += "<h2>Summary</h2>\n<p>" + std::to_string(compliant) + " of " + std::to_string(total) +
       " protected sources met every recovery objective at the end of the month.</p>\n";
  h += "<h2>Recovery objectives per source</h2>\n<table>\n<tr><th>Source</th><th>Host</th>"
       "<th>What</th><th>Policy</th><th>RPO</th><th>Achieved</th><th>Off-site</th><th>RTO</th>"
       "<th>Last drill</th><th>Drill fresh</th><th>Backups done / failed / missed</th>"
       "<th>Success</th><th>Drills done / missed</th><th>Compliant</th></tr>\n";
  if (rows != nullptr && rows->is_array()) {
    for (const auto& v : rows->as_array()) {
      const json::object& s = v.as_object();
      std::string what;
      if (const json::value* p = At(s, "paths"); p != nullptr && p->is_array()) {
        for (const auto& x : p->as_array()) what += (what.empty() ? "" : " ") + Text(&x);
      }
      std::string drill = "-";
      if (const json::value* d = At(s, "last_drill"); d != nullptr && d->is_object()) {
        const json::object& o = d->as_object();
        const json::value* met = At(o, "rto_met");
        drill = Text(At(o, "total_seconds")) + " s, " + Text(At(o, "finished")) + ", " +
                (met != nullptr && met->is_bool() ? Verdict(met->as_bool(), "RTO met", "RTO missed")
                                                  : std::string("no RTO")) +
                (At(o, "read_site") ? ", read at " + Text(At(o, "read_site")) : "");
      }
      const json::object& b = At(s, "backups")->as_object();
      const json::value* sd = At(s, "scheduled_drills");
      std::string drills = "-";
      if (sd != nullptr && sd->is_object()) {
        drills = Text(At(sd->as_object(), "done")) + " / " + Text(At(sd->as_object(), "missed"));
      }
      const json::value* c = At(s, "compliant");
      const bool ok = c != nullptr && c->is_bool() && c->as_bool();
      const json::value* pct = At(s, "backup_success_percent");
      h += "<tr><td>" + Text(At(s, "source")) + "</td><td>" + Text(At(s, "host")) + "</td><td>" +
           what + "</td><td>" + Text(At(s, "policy")) + "</td><td>" +
           Duration(At(s, "rpo_seconds")) + "</td><td>" + Duration(At(s, "rpo_achieved_seconds")) +
           " (" + Text(At(s, "rpo_state")) + ")</td><td>" + Text(At(s, "offsite")) + "</td><td>" +
           Duration(At(s, "rto_seconds")) + "</td><td>" + drill + "</td><td>" +
           Text(At(s, "drill_fresh")) + "</td><td>" + Text(At(b, "done")) + " / " +
           Text(At(b, "failed")) + " / " + Text(At(b, "missed")) + "</td><td>" +
           (pct != nullptr && pct->is_number() ? Text(pct) + " %" : "-") + "</td><td>" + drills +
           "</td><td>" + Verdict(ok, "yes", "NO") + "</td></tr>\n";
    }
  }
  h += "</table>\n<h2>Restore drills this month</h2>\n<table>\n<tr><th>Drill</th><th>Finished"
       "</th><th>Snapshot</th><th>Host</th><th>Drill host</th><th>Read at</th><th>Files</th>"
       "<th>Bytes</th><th>Total</th><th>RTO</th><th>Result</th></tr>\n";
  const json::value* drills = At(r, "drills");
  if (drills != nullptr && drills->is_array()) {
    for (const auto& v : drills->as_array()) {
      const json::object& d = v.as_object();
      const json::value* ok = At(d, "ok");
      const bool passed = ok != nullptr && ok->is_bool() && ok->as_bool();
      h += "<tr><td>" + Text(At(d, "drill")) + "</td><td>" + Text(At(d, "finished")) +
           "</td><td><code>" + Text(At(d, "snapshot")) + "</code></td><td>" +
           Text(At(d, "snapshot_host")) + "</td><td>" + Text(At(d, "drill_host")) + "</td><td>" +
           Text(At(d, "read_site")) + "</td><td>" + Text(At(d, "files")) + "</td><td>" +
           Text(At(d, "bytes")) + "</td><td>" + Seconds(At(d, "total_millis")) + "</td><td>" +
           Duration(At(d, "rto_seconds")) + "</td><td>" +
           Verdict(passed, "passed", "FAILED: " + Text(At(d, "failure"))) + "</td></tr>\n";
    }
  }
  if (drills == nullptr || !drills->is_array() || drills->as_array().empty()) {
    h += "<tr><td colspan=\"11\">No drill this month.</td></tr>\n";
  }
  h += "</table>\n";
  return h;
}

std::string WrapMonthlyHtml(const std::string& body, const json::object& signed_report) {
  // "</" never appears inside the JSON block (a string holding "</script>"
  // would end it): serialise, then escape every '<' as \u003c.
  std::string data;
  for (char ch : json::serialize(signed_report)) {
    if (ch == '<') {
      data += "\\u003c";
    } else {
      data += ch;
    }
  }
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>Cairn recovery evidence</title><style>"
         "body{font-family:'Noto Sans','Noto Sans CJK SC',sans-serif;margin:2em;color:#111}"
         "table{border-collapse:collapse;width:100%;margin:1em 0;font-size:0.9em}"
         "th,td{border:1px solid #999;padding:0.3em 0.5em;text-align:left;vertical-align:top}"
         "th{background:#eee}.ok{color:#060;font-weight:bold}.bad{color:#b00;font-weight:bold}"
         ".meta{color:#444}@media print{body{margin:0}}</style></head><body>\n" +
         std::string(kBodyBegin) + body + std::string(kBodyEnd) + "\n" + std::string(kScriptBegin) +
         data + std::string(kScriptEnd) + "\n</body></html>\n";
}

Result<MonthlyParts> SplitMonthlyHtml(const std::string& html) {
  const size_t b = html.find(kBodyBegin);
  const size_t e = html.find(kBodyEnd);
  const size_t s = html.find(kScriptBegin);
  if (b == std::string::npos || e == std::string::npos || s == std::string::npos || e < b ||
      s < e) {
    return Status::Corruption("not a Cairn monthly report (its markers are missing)");
  }
  const size_t data_at = s + kScriptBegin.size();
  const size_t end = html.find(kScriptEnd, data_at);
  if (end == std::string::npos) return Status::Corruption("the signed report is cut short");
  boost::system::error_code ec;
  json::value v = json::parse(std::string_view(html).substr(data_at, end - data_at), ec);
  if (ec || !v.is_object()) return Status::Corruption("the signed report is not JSON");
  MonthlyParts parts;
  parts.body = html.substr(b + kBodyBegin.size(), e - b - kBodyBegin.size());
  parts.signed_report = std::move(v.as_object());
  return parts;
}

}  // namespace cairn::vault
