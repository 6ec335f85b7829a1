Console.Error.WriteLine("iserblockctl: not built yet");
return 1;
