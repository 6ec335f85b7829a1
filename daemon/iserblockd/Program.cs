Console.Error.WriteLine("iserblockd: not built yet");
return 1;
