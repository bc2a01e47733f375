#include "lib/base/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "lib/base/errno.h"

namespace cairn {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

json::object RunShellCommand(const std::string& command, const std::string& cwd,
                             const std::vector<std::pair<std::string, std::string>>& env,
                             std::chrono::seconds timeout) {
  json::object out{{"command", command}, {"exit", nullptr}, {"timed_out", false}};
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    out["failure"] = "pipe: " + ErrnoToStatus(errno, "").message();
    return out;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    out["failure"] = "fork: " + ErrnoToStatus(errno, "").message();
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return out;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::setpgid(pid, pid);
  ::close(pipefd[1]);
  std::string tail;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false, eof = false;
  while (!eof) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(pipefd[0], buf, sizeof(buf));
    if (n <= 0) {
      eof = true;
    } else {
      tail.append(buf, static_cast<size_t>(n));
      if (tail.size() > 8192) tail.erase(0, tail.size() - 4096);
    }
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  // After EOF the command may still run (a daemon that closed its output):
  // wait out the rest of the timeout, then kill the group.
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(pipefd[0]);
  if (tail.size() > 4096) tail.erase(0, tail.size() - 4096);
  // Only printable text and newlines in the report.
  for (char& ch : tail) {
    if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) ch = '?';
  }
  out["output_tail"] = tail;
  out["timed_out"] = timed_out;
  if (timed_out) {
    out["failure"] = "killed after " + std::to_string(timeout.count()) + " s";
  } else if (WIFEXITED(status)) {
    out["exit"] = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out["failure"] = "killed by signal " + std::to_string(WTERMSIG(status));
  }
  return out;
}

bool ShellCommandPassed(const json::object& result) {
  const json::value* exit = result.if_contains("exit");
  return exit != nullptr && exit->is_number() && exit->to_number<int64_t>() == 0;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

}  // namespace cairn
