/**
 * Helpers of the SRCNN MINDIR inference harness: command line parsing and
 * file I/O.  Nothing here depends on MindSpore.
 */
#ifndef SRCNN_ASCEND310_INFER_INC_UTILS_H_
#define SRCNN_ASCEND310_INFER_INC_UTILS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace srcnn_infer {

enum class DeviceKind { kAscend, kCPU };

struct Options {
  std::string mindir_path;
  std::string input_path;
  std::string result_path = "./result_Files";
  DeviceKind device = DeviceKind::kAscend;
  uint32_t device_id = 0;
  bool has_input_shape = false;  // --input_shape=H,W given
  int64_t input_height = 0;
  int64_t input_width = 0;
  bool help = false;
};

/// Usage text (several lines, ends with a newline).
std::string Usage(const std::string &prog);

/// Parses --name=value / --name value flags.  Returns false and sets *error
/// to a one-line message on an unknown flag, a bad value or a missing
/// required flag (unless --help was given).
bool ParseArgs(int argc, const char *const argv[], Options *opts, std::string *error);

const char *DeviceName(DeviceKind device);

/// Regular files named *.bin directly inside dir, sorted by name.
bool ListBinFiles(const std::string &dir, std::vector<std::string> *files, std::string *error);

bool ReadBinaryFile(const std::string &path, std::vector<char> *data, std::string *error);
bool WriteBinaryFile(const std::string &path, const void *data, size_t size, std::string *error);

/// Creates dir and its parents when missing; fails if it exists as a non-directory.
bool MakeDirs(const std::string &dir, std::string *error);

/// Fails (with a one-line *error) unless a file can be created in the folder dir.
bool CheckWritable(const std::string &dir, std::string *error);

bool IsRegularFile(const std::string &path);
bool IsDirectory(const std::string &path);

/// File name without folder and without its last extension ("a/b.x.bin" -> "b.x").
std::string FileStem(const std::string &path);
std::string JoinPath(const std::string &dir, const std::string &name);

/// Replaces line breaks and tabs by spaces and trims, so messages stay on one line.
std::string OneLine(const std::string &text);

}  // namespace srcnn_infer

#endif  // SRCNN_ASCEND310_INFER_INC_UTILS_H_
