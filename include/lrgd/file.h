// Whole-file reads and crash-safe writes, with errors that name the file and the reason.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace lrgd {

// The file's bytes. Throws IoError("cannot read PATH: reason").
std::string read_file(const std::filesystem::path& path);

// Writes `content` to PATH.tmp, syncs it and renames it over PATH (then syncs the folder), so
// PATH holds either the old or the new content after a crash, never a torn one. Creates
// missing parent folders. Throws IoError naming the path and the system's reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace lrgd
