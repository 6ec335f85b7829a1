using System.Diagnostics;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

/// <summary>
/// Sizes, offsets and constants as the kernel's uapi headers (linux/io_uring.h, linux/ublk_cmd.h from
/// linux-libc-dev) define them: a small C program compiled with the system compiler prints them, once per run.
/// </summary>
internal static class UapiLayout
{
    private static readonly Lazy<Dictionary<string, long>> Values = new(Compile);

    public static long Get(string name) =>
        Values.Value.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"the C program printed no {name}");

    private const string Program = """
        #include <stdio.h>
        #include <errno.h>
        #include <stddef.h>
        #include <linux/io_uring.h>
        #include <linux/ublk_cmd.h>
        #define S(t) printf("sizeof %s %zu\n", #t, sizeof(struct t))
        #define O(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(struct t, f))
        #define C(c) printf("const %s %lld\n", #c, (long long)(c))
        int main(void) {
            S(io_uring_sqe); O(io_uring_sqe, opcode); O(io_uring_sqe, flags); O(io_uring_sqe, ioprio); O(io_uring_sqe, fd);
            O(io_uring_sqe, off); O(io_uring_sqe, cmd_op); O(io_uring_sqe, addr); O(io_uring_sqe, len); O(io_uring_sqe, uring_cmd_flags);
            O(io_uring_sqe, user_data); O(io_uring_sqe, buf_index); O(io_uring_sqe, personality); O(io_uring_sqe, file_index);
            O(io_uring_sqe, addr3); O(io_uring_sqe, cmd);
            S(io_uring_cqe); O(io_uring_cqe, user_data); O(io_uring_cqe, res); O(io_uring_cqe, flags);
            S(io_uring_params); O(io_uring_params, features); O(io_uring_params, sq_off); O(io_uring_params, cq_off);
            S(io_sqring_offsets); O(io_sqring_offsets, array); S(io_cqring_offsets); O(io_cqring_offsets, cqes);
            S(io_uring_getevents_arg); O(io_uring_getevents_arg, ts);
            C(IORING_OP_NOP); C(IORING_OP_READ); C(IORING_OP_WRITE); C(IORING_OP_URING_CMD);
            C(IORING_SETUP_SQE128); C(IORING_SETUP_COOP_TASKRUN); C(IORING_SETUP_SINGLE_ISSUER);
            C(IORING_ENTER_GETEVENTS); C(IORING_ENTER_EXT_ARG); C(IORING_FEAT_SINGLE_MMAP); C(IORING_FEAT_EXT_ARG);
            C(IORING_OFF_SQ_RING); C(IORING_OFF_SQES);
            S(ublksrv_ctrl_cmd); O(ublksrv_ctrl_cmd, dev_id); O(ublksrv_ctrl_cmd, queue_id); O(ublksrv_ctrl_cmd, len);
            O(ublksrv_ctrl_cmd, addr); O(ublksrv_ctrl_cmd, data);
            S(ublksrv_ctrl_dev_info); O(ublksrv_ctrl_dev_info, queue_depth); O(ublksrv_ctrl_dev_info, state);
            O(ublksrv_ctrl_dev_info, max_io_buf_bytes); O(ublksrv_ctrl_dev_info, dev_id); O(ublksrv_ctrl_dev_info, ublksrv_pid);
            O(ublksrv_ctrl_dev_info, flags); O(ublksrv_ctrl_dev_info, ublksrv_flags);
            S(ublksrv_io_desc); O(ublksrv_io_desc, nr_sectors); O(ublksrv_io_desc, start_sector); O(ublksrv_io_desc, addr);
            S(ublksrv_io_cmd); O(ublksrv_io_cmd, tag); O(ublksrv_io_cmd, result); O(ublksrv_io_cmd, addr);
            S(ublk_param_basic); O(ublk_param_basic, logical_bs_shift); O(ublk_param_basic, physical_bs_shift);
            O(ublk_param_basic, io_opt_shift); O(ublk_param_basic, io_min_shift); O(ublk_param_basic, max_sectors);
            O(ublk_param_basic, chunk_sectors); O(ublk_param_basic, dev_sectors); O(ublk_param_basic, virt_boundary_mask);
            S(ublk_param_discard); O(ublk_param_discard, discard_granularity); O(ublk_param_discard, max_discard_sectors);
            O(ublk_param_discard, max_write_zeroes_sectors); O(ublk_param_discard, max_discard_segments);
            S(ublk_params); O(ublk_params, types); O(ublk_params, basic); O(ublk_params, discard);
            C(UBLK_CMD_GET_DEV_INFO); C(UBLK_CMD_ADD_DEV); C(UBLK_CMD_DEL_DEV); C(UBLK_CMD_START_DEV); C(UBLK_CMD_STOP_DEV);
            C(UBLK_CMD_SET_PARAMS); C(UBLK_CMD_GET_PARAMS); C(UBLK_CMD_START_USER_RECOVERY); C(UBLK_CMD_END_USER_RECOVERY);
            C(UBLK_IO_FETCH_REQ); C(UBLK_IO_COMMIT_AND_FETCH_REQ); C(UBLK_IO_RES_ABORT); C(UBLKSRV_CMD_BUF_OFFSET);
            C(UBLKSRV_IO_BUF_OFFSET); C(UBLK_MAX_QUEUE_DEPTH);
            C(UBLK_F_USER_RECOVERY); C(UBLK_F_USER_RECOVERY_REISSUE);
            C(UBLK_IO_OP_READ); C(UBLK_IO_OP_WRITE); C(UBLK_IO_OP_FLUSH); C(UBLK_IO_OP_DISCARD); C(UBLK_IO_OP_WRITE_ZEROES);
            C(UBLK_IO_F_FUA); C(UBLK_IO_F_NOUNMAP);
            C(UBLK_ATTR_READ_ONLY); C(UBLK_ATTR_ROTATIONAL); C(UBLK_ATTR_VOLATILE_CACHE); C(UBLK_ATTR_FUA);
            C(UBLK_PARAM_TYPE_BASIC); C(UBLK_PARAM_TYPE_DISCARD);
            C(UBLK_S_DEV_DEAD); C(UBLK_S_DEV_LIVE); C(UBLK_S_DEV_QUIESCED);
            return 0;
        }
        """;

    private static Dictionary<string, long> Compile()
    {
        var dir = Directory.CreateTempSubdirectory("uapi-layout-");
        try
        {
            var source = Path.Combine(dir.FullName, "layout.c");
            var binary = Path.Combine(dir.FullName, "layout");
            File.WriteAllText(source, Program);
            var compiler = File.Exists("/usr/bin/gcc") ? "gcc" : "cc";
            Run(compiler, $"-o {binary} {source}");
            var values = new Dictionary<string, long>();
            foreach (var line in Run(binary, "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ');
                values[parts[0] + " " + parts[1]] = long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
            }
            return values;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string Run(string file, string arguments)
    {
        using var process = System.Diagnostics.Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000)) { process.Kill(); throw new TimeoutException($"{file} did not finish in 60 s"); }
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments}: exit {process.ExitCode}: {error.Result}");
        return output.Result;
    }
}
